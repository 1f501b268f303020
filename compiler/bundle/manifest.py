"""The bundle manifest's plan part: tasks, expressions, inputs and outputs from the merged IR."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from planc.compiler.codegen.lower import value_types
from planc.compiler.ir.graph import (
    OUTPUT,
    BuiltinTask,
    Const,
    GateTask,
    GroupTask,
    InputTask,
    LoopTask,
    PlanGraph,
    PlanSchedule,
    Task,
    ToolDecl,
    ToolKind,
    ToolTask,
    ValueRef,
    ValueType,
)
from planc.dsl import ast as A
from planc.runtime.contract.manifest import TensorType

__all__ = ["expr_json", "schedule_json", "tasks_json", "tool_table", "type_json"]


def type_json(t: ValueType) -> dict[str, Any] | None:
    """A value's type as the manifest's TYPE (the runtime's TensorType record), None for JSON."""
    return None if t is None else TensorType(t.dtype, tuple(t.shape)).to_json()


def expr_json(e: A.Expr) -> dict[str, Any]:
    """A guard or `until` as the runtime's EXPR tree (docs/bundle.md); never Python source."""
    if isinstance(e, A.Ref):
        return {"ref": str(ValueRef(e.name, e.index))}
    if isinstance(e, A.Number):
        return {"num": e.value}
    if isinstance(e, A.Compare):
        return {"op": e.op, "args": [expr_json(e.left), expr_json(e.right)]}
    if isinstance(e, A.BoolOp):
        return {"op": e.op, "args": [expr_json(x) for x in e.operands]}
    if isinstance(e, A.Not):
        return {"op": "not", "args": [expr_json(e.operand)]}
    raise TypeError(f"not an expression: {e!r}")


def _arg(a: Any) -> Any:
    return str(a) if isinstance(a, ValueRef) else {"const": a.value} if isinstance(a, Const) else a


def _common(t: Task, kind: str) -> dict[str, Any]:
    d: dict[str, Any] = {"name": t.name, "kind": kind, "args": [_arg(a) for a in t.args],
                         "results": [str(v) for v in t.values()]}
    if t.guard is not None:
        d["when"] = expr_json(t.guard)
    if t.after:
        d["after"] = list(t.after)
    return d


def _task(graph: PlanGraph, t: Task, types: dict[str, ValueType]) -> dict[str, Any] | None:
    if isinstance(t, (InputTask,)) or t.name == OUTPUT:
        return None
    if isinstance(t, GroupTask):
        d = _common(t, "compute")
        d["module"] = t.name
        if len(t.members) > 1:
            d["result_deps"] = result_deps(t)
            d["arg_types"] = [type_json(types[str(a)]) for a in t.args if isinstance(a, ValueRef)]
        return d
    if isinstance(t, BuiltinTask):
        d = _common(t, "builtin")
        d["op"] = t.op.value
        d["type"] = type_json(t.results[0])
        return d
    if isinstance(t, ToolTask):
        d = _common(t, "tool")
        d["tool"] = t.tool
        d["returns"] = type_json(t.results[0]) if t.results else None
        p = t.policy
        d["policy"] = {k: v for k, v in {
            "retry": p.retry, "backoff": list(p.backoff) if p.backoff else None, "timeout": p.timeout,
            "breaker": list(p.breaker) if p.breaker else None, "on_failure": p.on_failure.value,
            "fallback": str(p.fallback) if p.fallback is not None else None}.items() if v is not None}
        return d
    if isinstance(t, GateTask):
        d = _common(t, "gate")
        d.update(timeout=t.timeout, default=t.default.value)
        return d
    if isinstance(t, LoopTask):
        d = _common(t, "loop")
        d.update(max=t.max_iter, until=expr_json(t.until),
                 carries=[{"name": c.name, "init": str(c.init), "next": str(c.next)} for c in t.carries],
                 body=tasks_json(t.body, types))
        if t.expect is not None:
            d["expect"] = t.expect
        return d
    raise TypeError(f"task '{t.name}' of kind '{t.kind}' cannot go into a bundle (was merge run?)")


def result_deps(group: GroupTask) -> list[list[int]]:
    """For each export of a group, the indices of the group's args it depends on. A merged
    group may hold tasks with different inputs: when one input is skipped, only the exports
    that need it are skipped (planrt runs the module with zeros in its place)."""
    args = [str(a) for a in group.args if isinstance(a, ValueRef)]
    deps: dict[str, set[int]] = {}
    for m in group.members:
        need: set[int] = set()
        for a in m.args:
            if isinstance(a, ValueRef):
                name = str(a)
                need |= {args.index(name)} if name in args else deps.get(name, set())
        for v in m.values():
            deps[str(v)] = need
    return [sorted(deps[str(e)]) for e in group.exports]


def tasks_json(graph: PlanGraph, types: dict[str, ValueType] | None = None) -> list[dict[str, Any]]:
    """The tasks in topological order (names break ties), as manifest TASK objects."""
    types = value_types(graph) if types is None else types
    out = []
    for n in graph.topo_order():
        d = _task(graph, graph.task(n), types)
        if d is not None:
            out.append(d)
    return out


def tool_table(tools: tuple[ToolDecl, ...]) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The manifest's tool table and the tool files as bundle members (`tools/NAME/FILE`)."""
    table: dict[str, Any] = {}
    members: dict[str, bytes] = {}
    for t in tools:
        member = f"tools/{t.name}/{Path(t.path).name}"
        members[member] = Path(t.path).read_bytes()
        entry: dict[str, Any] = {"kind": t.kind.value, "path": member, "returns": type_json(t.returns)}
        if t.kind is ToolKind.PYTHON:
            entry["function"] = t.function
        table[t.name] = entry
    return table, members


def schedule_json(s: PlanSchedule) -> dict[str, Any]:
    return {
        "devices": {n: k for n, k in s.devices}, "objective": s.objective, "method": s.method,
        "placement": {x.task: x.device for x in s.slots},
        "start": {x.task: x.start for x in s.slots}, "finish": {x.task: x.finish for x in s.slots},
        "order": [x.task for x in sorted(s.slots, key=lambda x: (x.start, x.task))],
        "makespan": s.makespan, "energy": s.energy, "period": s.period, "heft_makespan": s.heft_makespan,
        "lower_bound": s.lower_bound, "proven": s.proven,
    }
