"""Deterministic, MLIR-flavoured text for a PlanGraph: for --print-ir-after, diagnostics and golden tests.

Tasks print in topological order (names break ties), one per line:

    %boxes = compute @detector(%pre) : (f32[1,64,64,3]) -> f32[1,16]  {flops=..., bytes=...}

Types appear once a task is typed; loop bodies (and any record's `nested()` tasks) are
indented under their node. Paths print relative to the plan's directory, so the text
does not depend on where the plan lives.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from planc.compiler.ir.graph import (
    OUTPUT,
    Arg,
    Carry,
    Const,
    LoopTask,
    ModelDecl,
    ModelKind,
    PlanGraph,
    PlanSchedule,
    Task,
    ToolDecl,
    ValueRef,
    ValueType,
    format_number,
    format_value_type,
)
from planc.dsl import ast as A

__all__ = ["format_expr", "format_ref", "print_ir", "print_task"]

_INDENT = "  "
_PREC = {"or": 1, "and": 2, "not": 3, "compare": 4, "atom": 5}


def format_ref(ref: ValueRef | A.Ref) -> str:
    return f"%{ref}"


def _format_number(v: float) -> str:
    return str(v) if isinstance(v, int) or not float(v).is_integer() else repr(float(v))


def format_expr(e: A.Expr, parent: int = 0) -> str:
    """A guard or `until` expression; parentheses only where precedence needs them."""
    if isinstance(e, A.Ref):
        return format_ref(e)
    if isinstance(e, A.Number):
        return _format_number(e.value)
    if isinstance(e, A.Compare):
        text, prec = f"{format_expr(e.left, 5)} {e.op} {format_expr(e.right, 5)}", _PREC["compare"]
    elif isinstance(e, A.Not):
        # `not` binds looser than a comparison; parentheses there anyway, for the reader.
        text, prec = f"not {format_expr(e.operand, _PREC['atom'])}", _PREC["not"]
    else:
        prec = _PREC[e.op]
        text = f" {e.op} ".join(format_expr(o, prec + 1) for o in e.operands)
    return f"({text})" if prec < parent else text


def _arg(a: Arg) -> str:
    return format_ref(a) if isinstance(a, ValueRef) else json.dumps(a.value)


class _Types:
    """Types of every value in the plan (names are unique plan-wide), carries included."""

    def __init__(self, graph: PlanGraph) -> None:
        self.types: dict[str, ValueType] = {}
        for t in graph.walk():
            if t.results:
                for ref, ty in zip(t.values(), t.results):
                    self.types[str(ref)] = ty
            if isinstance(t, LoopTask):
                for c in t.carries:
                    if c.typed:
                        self.types[c.name] = c.type

    def arg(self, a: Arg) -> str | None:
        if isinstance(a, Const):
            return "json"
        key = str(a)
        return format_value_type(self.types[key]) if key in self.types else None


def _signature(t: Task, types: _Types) -> str:
    if not t.typed:
        return ""
    args = [types.arg(a) for a in t.args]
    res = [format_value_type(r) for r in t.results]
    if t.kind == "input":
        return f" : {res[0]}"
    arg_text = ", ".join(a if a is not None else "?" for a in args)
    res_text = res[0] if len(res) == 1 and len(t.values()) == 1 and t.values()[0].index is None \
        else f"({', '.join(res)})"
    return f" : ({arg_text}) -> {res_text}"


def _header(t: Task, types: _Types) -> str:
    lhs = ", ".join(format_ref(v) for v in t.values()) or f"%{t.name}"
    if t.kind == "input":
        return f"{lhs} = input{_signature(t, types)}"
    callee = t.callee()
    text = f"{lhs} = {t.kind}{' ' + callee if callee else ''}({', '.join(_arg(a) for a in t.args)})"
    if isinstance(t, LoopTask):
        text += f" max {t.max_iter} until {format_expr(t.until)}"
        if t.expect is not None:
            text += f" expect {format_number(t.expect)}"
    text += _signature(t, types)
    if t.guard is not None:
        text += f" when {format_expr(t.guard)}"
    if t.prob is not None:
        text += f" prob {format_number(t.prob)}"
    if t.after:
        text += f" after {', '.join(t.after)}"
    attrs = t.attributes()
    if attrs:
        text += "  {" + ", ".join(f"{k}={v}" for k, v in attrs) + "}"
    return text


def _carry(c: Carry) -> str:
    ty = f" : {format_value_type(c.type)}" if c.typed else ""
    return f"carry %{c.name} = {format_ref(c.init)} then {format_ref(c.next)}{ty}"


def _task_lines(t: Task, types: _Types, depth: int) -> list[str]:
    pad = _INDENT * depth
    if t.kind == "output":
        return [f"{pad}output {', '.join(_arg(a) for a in t.args)}"]
    inner = [_carry(c) for c in t.carries] if isinstance(t, LoopTask) else []
    nested = t.nested()
    if not inner and not nested:
        return [pad + _header(t, types)]
    lines = [f"{pad}{_header(t, types)} {{"]
    lines += [_INDENT * (depth + 1) + line for line in inner]
    for n in nested:
        lines += _task_lines(n, types, depth + 1)
    return [*lines, pad + "}"]


def _rel(path: Path, base: Path) -> str:
    return Path(os.path.relpath(path, base)).as_posix()


def _model(m: ModelDecl, base: Path) -> str:
    src = _rel(m.path, base)
    text = f'model @{m.name} = {m.kind.value} "{src}:{m.function}"'
    if m.kind is ModelKind.JAX and m.weights is not None:
        text += f' weights "{_rel(m.weights, base)}"'
    return text


def _tool(t: ToolDecl, base: Path) -> str:
    src = _rel(t.path, base) + (f":{t.function}" if t.function else "")
    returns = format_value_type(t.returns)
    return f'tool @{t.name} = {t.kind.value} "{src}" -> {returns}'


def print_ir(graph: PlanGraph) -> str:
    """The whole plan: header (source, objective, targets, declarations), then its tasks."""
    info, base, types = graph.info, graph.info.base_dir, _Types(graph)
    lines = [f"plan {info.name} {{", f'{_INDENT}source "{Path(info.source).name}"',
             f"{_INDENT}objective {info.objective.value}"]
    if info.targets:
        lines.append(f"{_INDENT}targets {', '.join(info.targets)}")
    lines += [_INDENT + _model(m, base) for m in info.models]
    lines += [_INDENT + _tool(t, base) for t in info.tools]
    lines.append("")
    order = [n for n in graph.topo_order() if n != OUTPUT]
    for name in order:
        lines += _task_lines(graph.task(name), types, 1)
    if OUTPUT in graph:
        lines += _task_lines(graph.task(OUTPUT), types, 1)
    if info.schedule is not None:
        lines += _schedule_lines(info.schedule)
    return "\n".join([*lines, "}"]) + "\n"


def _schedule_lines(s: PlanSchedule) -> list[str]:
    devices = ", ".join(f"{n}={k}" for n, k in s.devices)
    out = ["", f"{_INDENT}schedule on {s.deployment} ({devices}) objective={s.objective} method={s.method}",
           f"{_INDENT}{_INDENT}makespan={_us(s.makespan)} heft={_us(s.heft_makespan)} "
           f"energy={s.energy:.6g}J period={_us(s.period)}"]
    for slot in sorted(s.slots, key=lambda x: (x.start, x.device, x.task)):
        out.append(f"{_INDENT}{_INDENT}{slot.device}: {slot.task} [{_us(slot.start)} .. {_us(slot.finish)}]")
    return out


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:.1f}us"


def print_task(graph: PlanGraph, name: str) -> str:
    """One node (with its nested records), as it appears in `print_ir`."""
    return "\n".join(_task_lines(graph.task(name), _Types(graph), 0))

