"""Canonical layout of .plan source: `planc fmt`. Keeps every comment; parse(format(m)) == m."""

from __future__ import annotations

import math
from decimal import Decimal

from planc.dsl import ast as A
from planc.dsl.comments import BLANK, CommentMap, Slots
from planc.dsl.diagnostics import Diagnostic, DiagnosticError

__all__ = ["INDENT", "format_expr", "format_module", "format_stmt"]

INDENT = "  "
_CONT = INDENT * 2  # continuation lines of a statement: two levels deeper than the statement
_WIDTH = 80  # clauses on one continuation line, at most this wide (a longer clause gets its own)
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def format_module(module: A.Module) -> str:
    """The canonical text of a module, ending in one newline ('' for an empty module)."""
    cmap = CommentMap(module)
    slots = cmap.block(module.plans, sorted(module.comments), 1, container=None)
    out: list[str] = []
    for i, plan in enumerate(module.plans):
        lead = slots.lead[i]
        if i > 0 and (not lead or lead[0] is not BLANK):
            lead = [BLANK, *lead]
        _emit_lead(out, lead, "")
        _plan(out, plan, cmap, slots.nested[i])
    _emit_lead(out, slots.end, "")
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out) + "\n" if out else ""


def _emit_lead(out: list[str], entries: list, indent: str) -> None:
    for e in entries:
        if e is BLANK:
            if out and out[-1] != "":
                out.append("")
        else:
            out.append(indent + e)


def _with_comments(line: str, comments: list[str]) -> str:
    return f"{line}  {'  '.join(comments)}" if comments else line


def _plan(out: list[str], plan: A.Plan, cmap: CommentMap, comments: list) -> None:
    slots = cmap.block(plan.body, comments, plan.span.line, container=plan)
    out.append(_with_comments(f"plan {plan.name.name} {{", slots.head))
    _block(out, plan.body, slots, cmap, INDENT)
    out.append(_with_comments("}", slots.tail))


def _block(out: list[str], body: tuple, slots: Slots, cmap: CommentMap, indent: str) -> None:
    for i, stmt in enumerate(body):
        lead = slots.lead[i]
        while not i and lead and lead[0] is BLANK:  # no blank line right after '{'
            lead = lead[1:]
        _emit_lead(out, lead, indent)
        if isinstance(stmt, A.Loop):
            _loop(out, stmt, cmap, indent, slots.nested[i])
        else:
            lines = format_stmt(stmt).split("\n")
            lines[-1] = _with_comments(lines[-1], slots.trail[i])
            out += [indent + ln for ln in lines]
    end = list(slots.end)
    while end and end[-1] is BLANK:
        end.pop()
    _emit_lead(out, end, indent)


def _loop(out: list[str], loop: A.Loop, cmap: CommentMap, indent: str, comments: list) -> None:
    slots = cmap.block(loop.body, comments, loop.span.line, container=loop)
    head = f"loop {loop.name.name} max {loop.max_iter} until {format_expr(loop.until)}"
    if loop.expect is not None:
        head += f" expect {_number(loop.expect)}"
    out.append(indent + _with_comments(head + " {", slots.head))
    _block(out, loop.body, slots, cmap, indent + INDENT)
    close = " ".join(["}", *(_clause(c) for c in loop.clauses)])
    out.append(indent + _with_comments(close, slots.tail))


def format_stmt(stmt: A.Stmt | A.Carry) -> str:
    """One statement (not a loop) in canonical form; continuation lines are indented relative to it."""
    if isinstance(stmt, A.Target):
        return "target " + ", ".join(i.name for i in stmt.names)
    if isinstance(stmt, A.Objective):
        return f"objective {stmt.name.name}"
    if isinstance(stmt, A.Input):
        return f"input {stmt.name.name}: {_type(stmt.type)}"
    if isinstance(stmt, A.Model):
        text = f"model {stmt.name.name} = {stmt.kind.name} {_string(stmt.source)}"
        return text + (f" weights {_string(stmt.weights)}" if stmt.weights is not None else "")
    if isinstance(stmt, A.Tool):
        text = f"tool {stmt.name.name} = {stmt.kind.name} {_string(stmt.source)}"
        return text + (f" returns {_type(stmt.returns)}" if stmt.returns is not None else "")
    if isinstance(stmt, A.Task):
        args = ", ".join(_arg(a) for a in stmt.args)
        return _with_clauses(f"task {stmt.name.name} = {stmt.callee.name}({args})", stmt.clauses)
    if isinstance(stmt, A.Gate):
        return _with_clauses(f"gate {stmt.name.name} ({stmt.value})", stmt.clauses)
    if isinstance(stmt, A.Carry):
        return f"carry {stmt.name.name} = {stmt.init} then {stmt.next}"
    if isinstance(stmt, A.Output):
        return "output " + ", ".join(str(r) for r in stmt.refs)
    raise TypeError(f"format_stmt: not a simple statement: {type(stmt).__name__}")


def _with_clauses(head: str, clauses: tuple[A.Clause, ...]) -> str:
    """The guard stays on the first line; other policies go on one continuation line."""
    rest = list(clauses)
    if rest and isinstance(rest[0], A.When):
        head += " " + _clause(rest.pop(0))
    lines: list[str] = []
    for text in map(_clause, rest):
        if lines and len(lines[-1]) + 1 + len(text) <= _WIDTH:
            lines[-1] += " " + text
        else:
            lines.append(text)
    return "\n".join([head, *(_CONT + ln for ln in lines)])


def _clause(c: A.Clause) -> str:
    if isinstance(c, A.When):
        return f"when {format_expr(c.expr)}"
    if isinstance(c, A.Retry):
        return f"retry {c.count}"
    if isinstance(c, A.Backoff):
        return f"backoff {_duration(c.low)}..{_duration(c.high)}"
    if isinstance(c, A.Timeout):
        return f"timeout {_duration(c.duration)}"
    if isinstance(c, A.Breaker):
        return f"breaker {c.failures} per {_duration(c.window)}"
    if isinstance(c, A.OnFailure):
        return f"on failure {c.action.name}" + (f" {c.fallback.name}" if c.fallback is not None else "")
    if isinstance(c, A.Cost):
        return f"cost {_duration(c.duration)}"
    if isinstance(c, A.After):
        return "after " + ", ".join(i.name for i in c.names)
    if isinstance(c, A.Prob):
        return f"prob {_number(c.value)}"
    if isinstance(c, A.Default):
        return f"default {c.decision.name}"
    raise TypeError(f"not a clause: {type(c).__name__}")


def format_expr(e: A.Expr) -> str:
    """An expression with the fewest parentheses that parse back to the same tree."""
    if isinstance(e, A.Ref):
        return str(e)
    if isinstance(e, A.Number):
        return _number(e)
    if isinstance(e, A.Compare):
        return f"{_atom(e.left)} {e.op} {_atom(e.right)}"
    if isinstance(e, A.Not):
        inner = format_expr(e.operand)
        # `not a > b` already means not (a > b); the parentheses are for the reader.
        return f"not ({inner})" if isinstance(e.operand, (A.BoolOp, A.Compare)) else f"not {inner}"
    if isinstance(e, A.BoolOp):
        # Nested and/or keep their parentheses: (a and b) and c is its own tree.
        parts = [f"({format_expr(o)})" if isinstance(o, A.BoolOp) and (o.op == e.op or e.op == "and")
                 else format_expr(o) for o in e.operands]
        return f" {e.op} ".join(parts)
    raise TypeError(f"not an expression: {type(e).__name__}")


def _atom(e: A.Expr) -> str:
    return format_expr(e) if isinstance(e, (A.Ref, A.Number)) else f"({format_expr(e)})"


def _bad_number(value: object, span: A.Span) -> DiagnosticError:
    return DiagnosticError([Diagnostic.error("E0201", f"number {value} cannot be written in a plan", span)])


def _number(n: A.Number) -> str:
    v = n.value
    if isinstance(v, float):
        if not math.isfinite(v):
            raise _bad_number(v, n.span)
        return repr(v)
    return str(v)


def _duration(d: A.Duration) -> str:
    v = d.value
    if isinstance(v, float):
        if not math.isfinite(v) or v < 0:
            raise _bad_number(v, d.span)
        text = format(Decimal(repr(v)), "f")  # positional: the lexer takes no exponent here
        return (text if "." in text else text + ".0") + d.unit
    return f"{v}{d.unit}"


def _type(t: A.TensorType) -> str:
    return f"{t.dtype.value}[{', '.join(map(str, t.shape))}]"


def _string(s: A.String) -> str:
    return '"' + "".join(_ESCAPES.get(ch, ch) for ch in s.value) + '"'


def _arg(a: A.Ref | A.Number | A.String) -> str:
    if isinstance(a, A.String):
        return _string(a)
    if isinstance(a, A.Number):
        return _number(a)
    return str(a)
