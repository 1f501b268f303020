"""The plan IR: one PlanGraph, a networkx DiGraph of typed task records whose edges derive from their uses.

A PlanGraph is immutable by convention: passes build new ones (`replace_tasks`, `rebuild`)
rather than editing `nx`. Edges are never added by hand; they follow from each record's
`uses()` (args, guard, fallback) and `after`, so the graph cannot disagree with its tasks.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import networkx as nx
from planc.compiler.ir.records import *
from planc.compiler.ir.records import (
    OUTPUT,
    IRError,
    ModelDecl,
    Objective,
    ToolDecl,
    ValueRef,
    ValueType,
)
from planc.compiler.ir.records import __all__ as _record_names
from planc.compiler.ir.tasks import *
from planc.compiler.ir.tasks import Task
from planc.compiler.ir.tasks import __all__ as _task_records
from planc.dsl.ast import NO_SPAN, Span
from planc.dsl.diagnostics import Diagnostic

__all__ = [  # noqa: RUF022 - the records first, then the graph
    "OUTPUT", "Arg", "BuiltinOp", "BuiltinTask", "Carry", "ComputeTask", "Const", "CostFacts", "FailureAction",
    "GateDefault", "GateTask", "IRError", "InputTask", "LoopTask", "ModelDecl", "ModelKind", "Objective",
    "OutputTask", "Policy", "Task", "ToolDecl", "ToolKind", "ToolTask", "ValueRef", "ValueType", "expr_refs",
    "format_number", "format_seconds", "format_value_type",
    "GroupTask", "Edge", "PlanInfo", "PlanGraph", "PlanSchedule", "Slot",
]
assert set(__all__) >= set(_record_names) | set(_task_records)


@dataclass(frozen=True, slots=True)
class Edge:
    """Producer -> consumer. `values` are the value names that flow (`t_stats.1`), `types`
    their types once the producer is typed (empty before); `control` is set when an
    `after` clause orders the consumer after the producer (it may carry values too)."""

    values: tuple[str, ...] = ()
    types: tuple[ValueType, ...] = ()
    control: bool = False

    @property
    def nbytes(self) -> int:
        """Bytes that flow along the edge (opaque JSON and untyped values count 0)."""
        return sum(t.nbytes for t in self.types if t is not None)


@dataclass(frozen=True, slots=True)
class Slot:
    """One task's place in the schedule: device instance, predicted start and finish (s)."""

    task: str
    device: str
    start: float
    finish: float


@dataclass(frozen=True, slots=True)
class PlanSchedule:
    """The schedule pass's result: placement and timeline on one deployment, and how it
    compares with HEFT's on the same graph (`heft_makespan`) and with the lower bounds on
    the objective's value (`bounds`: (name, value) pairs; `lower_bound` their maximum;
    `proven`: optimal; `solver`: CP-SAT's final status, "" when it did not run)."""

    deployment: str
    objective: str
    method: str
    devices: tuple[tuple[str, str], ...]  # (instance, kind)
    slots: tuple[Slot, ...]
    makespan: float
    energy: float
    period: float
    heft_makespan: float
    lower_bound: float = 0.0
    bounds: tuple[tuple[str, float], ...] = ()
    proven: bool = False
    solver: str = ""

    @property
    def gap(self) -> float:
        """Relative distance of the objective's value above the lower bound (0: optimal)."""
        value = {"energy": self.energy, "throughput": self.period}.get(self.objective, self.makespan)
        if self.proven:
            return 0.0
        if self.lower_bound <= 0:
            return 0.0 if value <= 0 else float("inf")
        return max(value / self.lower_bound - 1.0, 0.0)

    def placement(self) -> dict[str, str]:
        return {s.task: s.device for s in self.slots}


@dataclass(frozen=True, slots=True)
class PlanInfo:
    """Plan-level data, everything but the tasks. `source` is the .plan path as given,
    `base_dir` the absolute directory model and tool paths were resolved against,
    `inputs` the input names in declaration order."""

    name: str
    source: str
    base_dir: Path
    targets: tuple[str, ...] = ()
    objective: Objective = Objective.LATENCY
    models: tuple[ModelDecl, ...] = ()
    tools: tuple[ToolDecl, ...] = ()
    inputs: tuple[str, ...] = ()
    span: Span = field(default=NO_SPAN, compare=False, repr=False)
    deployment: str | None = None  # set by merge/schedule: the deployment optimized for
    schedule: PlanSchedule | None = None

    def model(self, name: str) -> ModelDecl:
        for m in self.models:
            if m.name == name:
                return m
        raise IRError(f"plan '{self.name}' has no model '{name}'")

    def tool(self, name: str) -> ToolDecl:
        for t in self.tools:
            if t.name == name:
                return t
        raise IRError(f"plan '{self.name}' has no tool '{name}'")


class PlanGraph:
    """A plan (or a loop body) as a DAG of task records.

    Node key = task name, node attribute `task` = the record; edge attribute `edge` = an
    `Edge`. The output node is named `OUTPUT`. A value whose task is not a node here
    (a loop-body task, a group member) is produced by the node that `defines()` it.
    References that no node defines are kept in `free_refs` (in a loop body: carries and
    outer values; at the top level: dangling, which verify reports).
    """

    __slots__ = ("_owner", "_topo", "diagnostics", "free_after", "free_refs", "info", "nx")

    def __init__(self, info: PlanInfo, tasks: Iterable[Task], *,
                 diagnostics: Iterable[Diagnostic] = ()) -> None:
        self.info = info
        self.diagnostics: tuple[Diagnostic, ...] = _dedupe(diagnostics)
        self.nx: nx.DiGraph = nx.DiGraph()
        self._owner: dict[str, str] = {}
        self._topo: tuple[str, ...] | None = None
        self.free_refs: tuple[tuple[str, ValueRef], ...] = ()
        self.free_after: tuple[tuple[str, str], ...] = ()
        records = list(tasks)
        for t in records:
            self._add_node(t)
        self._link(records)

    # -- construction -------------------------------------------------------------
    def _add_node(self, t: Task) -> None:
        if t.name in self.nx:
            raise IRError(f"two nodes named '{t.name}' in plan '{self.info.name}'")
        self.nx.add_node(t.name, task=t)
        for d in t.defines():
            if d in self._owner:
                raise IRError(f"'{d}' is defined by both '{self._owner[d]}' and '{t.name}'")
            self._owner[d] = t.name

    def _link(self, records: list[Task]) -> None:
        flows: dict[tuple[str, str], dict[str, ValueRef]] = {}
        control: set[tuple[str, str]] = set()
        free_refs: list[tuple[str, ValueRef]] = []
        free_after: list[tuple[str, str]] = []
        for t in records:
            for ref in t.uses():
                src = self._owner.get(ref.task)
                if src is None:
                    free_refs.append((t.name, ref))
                else:
                    flows.setdefault((src, t.name), {}).setdefault(str(ref), ref)
            for name in t.after:
                src = name if name in self.nx else self._owner.get(name)
                if src is None:
                    free_after.append((t.name, name))
                else:
                    control.add((src, t.name))
        memo: dict[str, dict[ValueRef, ValueType]] = {}
        for u, v in sorted(flows.keys() | control):
            refs = flows.get((u, v), {})
            types = self._types(u, refs.values(), memo) if refs else ()
            self.nx.add_edge(u, v, edge=Edge(tuple(refs), types, (u, v) in control))
        self.free_refs = tuple(free_refs)
        self.free_after = tuple(free_after)

    def _types(self, producer: str, refs: Iterable[ValueRef],
               memo: dict[str, dict[ValueRef, ValueType]]) -> tuple[ValueType, ...]:
        table = memo.get(producer)
        if table is None:
            task = self.task(producer)
            table = memo[producer] = dict(zip(task.values(), task.results)) if task.results else {}
        try:
            return tuple(table[ValueRef(r.task, r.index)] for r in refs)
        except KeyError:
            return ()  # untyped, or a bad tuple index that infer-types reports

    # -- plan-level data ----------------------------------------------------------
    @property
    def name(self) -> str:
        return self.info.name

    @property
    def models(self) -> Mapping[str, ModelDecl]:
        return {m.name: m for m in self.info.models}

    @property
    def tools(self) -> Mapping[str, ToolDecl]:
        return {t.name: t for t in self.info.tools}

    @property
    def inputs(self) -> tuple[str, ...]:
        return self.info.inputs

    @property
    def outputs(self) -> tuple[ValueRef, ...]:
        if OUTPUT not in self.nx:
            return ()
        return tuple(a for a in self.task(OUTPUT).args if isinstance(a, ValueRef))

    # -- queries ------------------------------------------------------------------
    def __len__(self) -> int:
        return self.nx.number_of_nodes()

    def __contains__(self, name: object) -> bool:
        return name in self.nx

    def task(self, name: str) -> Task:
        try:
            return self.nx.nodes[name]["task"]  # type: ignore[no-any-return]
        except KeyError:
            raise IRError(f"no task '{name}' in plan '{self.info.name}'") from None

    def tasks(self) -> Iterator[Task]:
        """The records, in insertion order (use `topo_order()` for a deterministic order)."""
        for _, data in self.nx.nodes(data="task"):
            yield data

    def walk(self) -> Iterator[Task]:
        """Every record in topological order, nested ones (loop bodies) after their parent."""
        for name in self.topo_order():
            t = self.task(name)
            yield t
            yield from _walk_nested(t)

    def topo_order(self) -> tuple[str, ...]:
        """Node names in topological order; among ready nodes, names in sorted order."""
        if self._topo is None:
            try:
                self._topo = tuple(nx.lexicographical_topological_sort(self.nx))
            except nx.NetworkXUnfeasible:
                raise IRError(f"plan '{self.info.name}' has a cycle; run verify first") from None
        return self._topo

    def producer(self, ref: ValueRef | str) -> str | None:
        """The node that produces a value (a loop for its body's values), or None."""
        return self._owner.get(ref.task if isinstance(ref, ValueRef) else ref)

    def consumers(self, name: str) -> tuple[str, ...]:
        """Nodes with an edge from `name` (data or control), sorted."""
        return tuple(sorted(self.nx.successors(name)))

    def edge(self, producer: str, consumer: str) -> Edge:
        return self.nx.edges[producer, consumer]["edge"]  # type: ignore[no-any-return]

    def value_type(self, ref: ValueRef) -> ValueType:
        """The type of a value produced in this graph; IRError if unknown or untyped."""
        src = self.producer(ref)
        if src is None:
            raise IRError(f"no node produces '{ref}' in plan '{self.info.name}'")
        return self.task(src).value_type(ValueRef(ref.task, ref.index))

    # -- new graphs -----------------------------------------------------------------
    def rebuild(self, tasks: Iterable[Task], *, info: PlanInfo | None = None) -> PlanGraph:
        """A new graph with these tasks (and this graph's diagnostics)."""
        return PlanGraph(info or self.info, tasks, diagnostics=self.diagnostics)

    def replace_tasks(self, records: Iterable[Task]) -> PlanGraph:
        """A copy with the same-named nodes replaced; one O(n) rebuild for all of them."""
        new = {r.name: r for r in records}
        missing = sorted(new.keys() - set(self.nx))
        if missing:
            raise IRError(f"replace_tasks: no task {', '.join(map(repr, missing))}")
        return self.rebuild(new.get(t.name, t) for t in self.tasks())

    def replace_task(self, record: Task) -> PlanGraph:
        """A copy with one node replaced (O(n): use `replace_tasks` for many)."""
        return self.replace_tasks([record])

    def with_diagnostics(self, diagnostics: Iterable[Diagnostic]) -> PlanGraph:
        """The same graph with more (deduplicated) warnings attached, shown by the driver."""
        g = PlanGraph.__new__(PlanGraph)
        for slot in PlanGraph.__slots__:
            setattr(g, slot, getattr(self, slot))
        g.diagnostics = _dedupe([*self.diagnostics, *diagnostics])
        return g

    def with_info(self, **changes: object) -> PlanGraph:
        return self.rebuild(self.tasks(), info=replace(self.info, **changes))  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"<PlanGraph {self.info.name}: {len(self)} nodes, {self.nx.number_of_edges()} edges>"


def _walk_nested(t: Task) -> Iterator[Task]:
    for n in t.nested():
        yield n
        yield from _walk_nested(n)


def _dedupe(diags: Iterable[Diagnostic]) -> tuple[Diagnostic, ...]:
    return tuple(sorted(set(diags), key=lambda d: (*d.sort_key(), d.message)))
