"""The `merge` pass: adjacent compute tasks become one module (one dispatch), by dynamic programming."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import ClassVar

from planc.compiler.costs.context import CompileContext
from planc.compiler.costs.deploy import arg_type, runnable, task_cost, task_facts
from planc.compiler.costs.model import CostModel, merge_facts
from planc.compiler.ir.graph import (
    BuiltinTask,
    ComputeTask,
    CostFacts,
    GroupTask,
    LoopTask,
    ModelKind,
    PlanGraph,
    Task,
    ValueRef,
    expr_refs,
)
from planc.compiler.merging.merge import Barrier, Compute, MergeOptions, MergeProblem, merge

__all__ = ["Merge", "merge_graph"]


@dataclass(frozen=True)
class Merge:
    """Groups compute tasks into modules and picks a device per group (DESIGN.md: merge).

    Legal groups hold only unguarded jax model calls and builtins, are convex and fit the
    device's memory; every other jax or mlir call becomes a group of one, so each module in
    the bundle is a group. Loop bodies are merged on their own."""

    name: ClassVar[str] = "merge"
    deploy: str = ""
    tuned: str = ""
    max_group: int = 64
    seed: int = 0
    context: CompileContext | None = field(default=None, compare=False, repr=False)  # the compile's, if any

    def run(self, graph: PlanGraph) -> PlanGraph:
        model = (self.context or CompileContext(self.tuned)).cost_model(graph, self.deploy)
        options = MergeOptions(max_group=self.max_group, seed=self.seed)
        merged = merge_graph(graph, model, options, _Names(graph))
        return merged.with_info(deployment=model.deployment.name)


class _Names:
    """Fresh group names (`g0`, `g1`, ...) that no task of the plan already uses."""

    def __init__(self, graph: PlanGraph):
        self.taken = {t.name for t in graph.walk()}
        self.n = 0

    def fresh(self) -> str:
        while f"g{self.n}" in self.taken:
            self.n += 1
        self.taken.add(name := f"g{self.n}")
        return name


def _mergeable(graph: PlanGraph, t: Task) -> bool:
    if t.guard is not None or not t.results:
        return False
    if isinstance(t, BuiltinTask):
        return True
    return isinstance(t, ComputeTask) and graph.info.model(t.model).kind is ModelKind.JAX


def _node(graph: PlanGraph, t: Task, model: CostModel, usable: dict[str, bool]) -> Compute | Barrier:
    if _mergeable(graph, t):
        facts = task_facts(t, [arg_type(graph, r) for r in t.uses()])
        assert facts is not None
        allowed = frozenset(d for d, ok in usable.items() if ok)
        return Compute(facts, devices=allowed or None)
    costs = task_cost(graph, t, model, model.deployment.names, usable)
    best = min(costs, key=lambda d: (costs[d], d))
    return Barrier(seconds=costs[best], device=best)


def _loop_live(loop: LoopTask) -> frozenset[str]:
    """Body values the loop itself reads: its exports, `until`, and each carry's next value."""
    live = {str(r) for r in loop.exports} | {str(c.next) for c in loop.carries}
    live |= {str(ValueRef(r.name, r.index)) for r in expr_refs(loop.until)}
    return frozenset(live)


def merge_graph(graph: PlanGraph, model: CostModel, options: MergeOptions, names: _Names,
                live: frozenset[str] = frozenset()) -> PlanGraph:
    """Merge one graph; `live` names values read from outside it (a loop body's exports)."""
    usable = runnable(graph, model)
    tasks = {n: graph.task(n) for n in graph.topo_order()}
    # Loop bodies first: their groups are independent of the outer graph's.
    for n, t in tasks.items():
        if isinstance(t, LoopTask):
            tasks[n] = replace(t, body=merge_graph(t.body, model, options, names, _loop_live(t)))
    problem = MergeProblem.build(
        [(n, _node(graph, t, model, usable)) for n, t in tasks.items()],
        [(u, v, float(graph.edge(u, v).nbytes)) for u, v in graph.nx.edges],
    )
    result = merge(problem, model, options=options)
    grouped: set[str] = set()
    out: list[Task] = []
    for g in result.groups:
        members = [tasks[m] for m in g.members]
        if g.barrier or not any(isinstance(m, ComputeTask) for m in members) and len(members) == 1:
            continue
        out.append(_group(graph, names.fresh(), members, g.device, live))
        grouped.update(g.members)
    for n, t in tasks.items():
        if n in grouped:
            continue
        if isinstance(t, ComputeTask):  # guarded jax calls and mlir models: a group of one
            out.append(_group(graph, names.fresh(), [t], None, live))
        else:
            out.append(t)
    return graph.rebuild(out)


def _group(graph: PlanGraph, name: str, members: list[Task], device: str | None,
           live: frozenset[str]) -> GroupTask:
    order = {n: i for i, n in enumerate(graph.topo_order())}
    members = sorted(members, key=lambda m: order[m.name])
    inside = {m.name for m in members}
    args: list[ValueRef] = []
    for m in members:
        for r in m.args:
            if isinstance(r, ValueRef) and r.task not in inside and r not in args:
                args.append(ValueRef(r.task, r.index))
    exports: list[ValueRef] = []
    for m in members:
        for v in m.values():
            if str(v) in live or _consumed_outside(graph, m.name, str(v), inside):
                exports.append(v)
    types = {v: m.results[i] for m in members for i, v in enumerate(m.values())}
    single = members[0] if len(members) == 1 else None
    internal = sum(t.nbytes for v, t in types.items() if v not in exports and t is not None)
    facts = [task_facts(m, [arg_type(graph, r) for r in m.uses()]) for m in members]
    merged = merge_facts([f for f in facts if f is not None], 2.0 * internal)
    return GroupTask(
        name=name, span=members[0].span, args=tuple(args), members=tuple(members), exports=tuple(exports),
        results=tuple(types[v] for v in exports), device=device,
        guard=single.guard if single else None, prob=single.prob if single else None,
        after=tuple(sorted({a for m in members for a in m.after if a not in inside})),
        facts=CostFacts(merged.flops, merged.bytes_accessed),
    )


def _consumed_outside(graph: PlanGraph, producer: str, value: str, inside: set[str]) -> bool:
    for c in graph.consumers(producer):
        if c in inside:
            continue
        if value in graph.edge(producer, c).values:
            return True
    return False
