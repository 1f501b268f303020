"""The `verify` pass: structural invariants of a PlanGraph (cycles, dangling uses, closed loop
bodies, reachability, scalar guards once typed), reported as Diagnostics at the tasks' spans."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import networkx as nx
from planc.compiler.ir.graph import (
    OUTPUT,
    ComputeTask,
    Edge,
    GateTask,
    IRError,
    LoopTask,
    PlanGraph,
    Task,
    ToolTask,
    ValueRef,
    ValueType,
    expr_refs,
)
from planc.dsl import ast as A
from planc.dsl.diagnostics import Diagnostic, DiagnosticError

__all__ = ["Verify", "cycle_diagnostics", "scalar_problem", "verify_graph"]


@dataclass(frozen=True)
class Verify:
    """Checks the graph; raises DiagnosticError on errors, attaches warnings otherwise."""

    name: ClassVar[str] = "verify"

    def run(self, graph: PlanGraph) -> PlanGraph:
        diags = verify_graph(graph)
        if any(d.is_error for d in diags):
            raise DiagnosticError(diags)
        return graph.with_diagnostics(diags) if diags else graph


def verify_graph(graph: PlanGraph) -> list[Diagnostic]:
    """Every problem found, errors and warnings; never raises for a malformed graph."""
    diags = list(_records(graph))
    if diags:
        return diags  # the rest assumes a record on every node
    diags += _dangling(graph)
    cycles = list(_cycles(graph))
    diags += cycles
    for t in graph.tasks():
        if isinstance(t, LoopTask):
            diags += _loop(graph, t)
    if not cycles:
        diags += _unreachable(graph)
    diags += _guards(graph)
    return diags


# -- records and names ---------------------------------------------------------------------
def _records(graph: PlanGraph) -> Iterator[Diagnostic]:
    for name, task in graph.nx.nodes(data="task"):
        if not isinstance(task, Task) or task.name != name:
            yield Diagnostic.error("E9999", f"internal error: node '{name}' holds {task!r}, not its task record")
    for u, v, edge in graph.nx.edges(data="edge"):
        if edge is None:
            yield Diagnostic.error("E9999", f"internal error: edge {u} -> {v} has no Edge record")


def _carry_homes(graph: PlanGraph) -> dict[str, str]:
    return {c.name: t.name for t in graph.tasks() if isinstance(t, LoopTask) for c in t.carries}


def _dangling(graph: PlanGraph) -> Iterator[Diagnostic]:
    homes = _carry_homes(graph)
    for user, ref in graph.free_refs:
        span = ref.span if ref.span.line else graph.task(user).span
        if ref.task in homes:
            yield Diagnostic.error("E0404", f"carry '{ref.task}' is only visible inside loop "
                                   f"'{homes[ref.task]}'", span, label=f"used by '{user}'")
        else:
            yield Diagnostic.error("E0402", f"'{user}' uses '{ref}', which no task produces", span)
    for user, name in graph.free_after:
        yield Diagnostic.error("E0402", f"'{user}' runs after '{name}', which is not a task",
                               graph.task(user).span)
    for t in graph.tasks():
        if isinstance(t, ComputeTask) and t.model not in graph.models:
            yield Diagnostic.error("E0402", f"task '{t.name}' calls model '{t.model}', which is not declared",
                                   t.span)
        if isinstance(t, ToolTask) and t.tool not in graph.tools:
            yield Diagnostic.error("E0402", f"task '{t.name}' calls tool '{t.tool}', which is not declared",
                                   t.span)


# -- cycles --------------------------------------------------------------------------------
def _position(graph: PlanGraph, name: str) -> tuple[int, int, str]:
    s = graph.task(name).span
    return (s.line, s.col, name)


def _shortest_cycle(g: nx.DiGraph, start: str, members: set[str]) -> list[str]:
    """The shortest cycle through `start` inside one strongly connected component."""
    parent: dict[str, str] = {}
    queue = deque([start])
    while queue:
        u = queue.popleft()
        for v in sorted(g.successors(u)):
            if v not in members:
                continue
            if v == start:
                path = [u]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return path[::-1]
            if v not in parent:
                parent[v] = u
                queue.append(v)
    return [start]


def cycle_diagnostics(graph: PlanGraph) -> list[Diagnostic]:
    """One E0401 per cycle (strongly connected component), at its first task in source order."""
    return list(_cycles(graph))


def _cycles(graph: PlanGraph) -> Iterator[Diagnostic]:
    g = graph.nx
    for scc in sorted(nx.strongly_connected_components(g), key=lambda c: min(_position(graph, n) for n in c)):
        if len(scc) == 1 and not any(g.has_edge(n, n) for n in scc):
            continue
        start = min(scc, key=lambda n: _position(graph, n))
        cycle = _shortest_cycle(g, start, scc)
        notes = []
        for u, v in zip(cycle, [*cycle[1:], cycle[0]]):
            notes.append((f"'{v}' {_why(graph.edge(u, v), u)}", graph.task(v).span))
        path = " -> ".join([*cycle, cycle[0]])
        yield Diagnostic.error(
            "E0401", f"cycle: {path}", graph.task(start).span, label="this task depends on itself",
            notes=tuple(notes),
            help="a task cannot wait for its own result; remove an `after` or a use, "
                 "or use a loop with `carry` for feedback")


def _why(edge: Edge, producer: str) -> str:
    if not edge.values:
        return f"runs after '{producer}'"
    if edge.values == (producer,):
        return f"uses '{producer}'"
    return f"uses {', '.join(repr(x) for x in edge.values)} of '{producer}'"


# -- loops ---------------------------------------------------------------------------------
def _loop(graph: PlanGraph, loop: LoopTask) -> Iterator[Diagnostic]:
    body = loop.body
    carries = {c.name for c in loop.carries}
    captured = {ValueRef(a.task, a.index) for a in loop.args if isinstance(a, ValueRef)}
    for c in loop.carries:
        if graph.producer(c.init) in (None, loop.name):
            yield Diagnostic.error("E0404", f"carry '{c.name}' starts from '{c.init}', which is not "
                                   "produced before the loop", c.init.span or c.span)
        if body.producer(c.next) is None:
            yield Diagnostic.error("E0404", f"carry '{c.name}' is updated from '{c.next}', which is not a "
                                   f"task of loop '{loop.name}'", c.next.span or c.span)
    outer_uses = [(u.task, u) for u in _body_free(body)] + [
        (loop.name, ValueRef(r.name, r.index, r.span)) for r in expr_refs(loop.until)
        if body.producer(r.name) is None]
    for user, ref in outer_uses:
        if ref.task in carries:
            continue
        if graph.producer(ref) in (None, loop.name):
            yield Diagnostic.error("E0404", f"'{ref}' used in loop '{loop.name}' is neither a carry, a task "
                                   "of the loop, nor a value produced before it", ref.span or loop.span)
        elif ValueRef(ref.task, ref.index) not in captured:
            yield Diagnostic.error("E0404", f"loop '{loop.name}' uses '{ref}' without capturing it "
                                   "(internal: build lists outer values in the loop's args)",
                                   ref.span or loop.span)
    for user, name in body.free_after:
        if name not in loop.after:
            yield Diagnostic.error("E0404", f"'{user}' in loop '{loop.name}' runs after '{name}', but the loop "
                                   "does not (internal: build lifts `after` to the loop)", loop.span)
    for v in loop.exports:
        if body.producer(v) is None:
            yield Diagnostic.error("E0404", f"loop '{loop.name}' exports '{v}', which its body does not "
                                   "produce", loop.span)
    yield from _cycles(body)


def _body_free(body: PlanGraph) -> Iterator[ValueRef]:
    for _, ref in body.free_refs:
        yield ref


# -- reachability --------------------------------------------------------------------------
def _unreachable(graph: PlanGraph) -> Iterator[Diagnostic]:
    if OUTPUT not in graph:
        return
    live = nx.ancestors(graph.nx, OUTPUT) | {OUTPUT}
    for name in sorted(set(graph.nx) - live, key=lambda n: _position(graph, n)):
        t = graph.task(name)
        if isinstance(t, GateTask) or t.kind == "input":
            continue  # a gate still asks (a rejection ends the run); unused inputs are dsl.check's W0003
        if isinstance(t, ToolTask):
            msg = f"tool task '{name}' contributes to no output; it still runs, for its side effects"
        else:
            msg = f"{t.kind} task '{name}' contributes to no output and may be dropped"
        yield Diagnostic.warning("E0403", msg, t.span, help="name it in `output`, or remove it")


# -- guards --------------------------------------------------------------------------------
def scalar_problem(t: ValueType) -> str | None:
    """Why a value of this type cannot appear in a guard, or None if it can."""
    if t is None:
        return "opaque JSON (a tool without `returns`)"
    if t.shape:
        return f"a tensor of type {t}, not a scalar"
    return None


class _Scope:
    """Values visible in a graph: its own, its loop's carries, then the enclosing graph's."""

    def __init__(self, graph: PlanGraph, parent: _Scope | None = None,
                 carries: dict[str, ValueType] | None = None) -> None:
        self.graph, self.parent, self.carries = graph, parent, carries or {}

    def type_of(self, ref: A.Ref) -> tuple[bool, ValueType]:
        """(known, type); unknown when untyped, undefined, or a bad tuple index."""
        if ref.name in self.carries:
            return True, self.carries[ref.name]
        if self.graph.producer(ref.name) is not None:
            try:
                return True, self.graph.value_type(ValueRef(ref.name, ref.index))
            except IRError:
                return False, None
        return self.parent.type_of(ref) if self.parent else (False, None)


def _guards(graph: PlanGraph, scope: _Scope | None = None) -> Iterator[Diagnostic]:
    scope = scope or _Scope(graph)
    for t in graph.tasks():
        checks = [("`when`", t.guard, scope)]
        if isinstance(t, LoopTask):
            inner = _Scope(t.body, scope, {c.name: c.type for c in t.carries if c.typed})
            checks.append(("`until`", t.until, inner))
        for what, expr, where in checks:
            for r in expr_refs(expr):
                known, ty = where.type_of(r)
                problem = scalar_problem(ty) if known else None
                if problem:
                    yield Diagnostic.error("E0305", f"{what} compares '{r}', {problem}", r.span,
                                           help="compare a scalar: reduce it first, e.g. max(x)")
        if isinstance(t, LoopTask):
            yield from _guards(t.body, inner)
