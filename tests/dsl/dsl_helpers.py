"""Shared helpers for the dsl tests: small plans and 'what does the front end say about this'."""

from __future__ import annotations

from pathlib import Path

from planc.dsl.check import check
from planc.dsl.diagnostics import Diagnostic, DiagnosticError
from planc.dsl.parser import parse

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*/*.plan"))

# Declarations most small cases need: line 2 input x, line 3 model m, line 4 tool t.
HEAD = ('input x: f32[]', 'model m = jax "m.py:f"', 'tool t = exec "t.sh"')


def plan(*body: str, head: tuple[str, ...] = HEAD, name: str = "p") -> str:
    """A plan with `head` then `body`, two-space indented: body[i] is on line len(head) + i + 2."""
    lines = [*head, *body]
    return f"plan {name} {{\n" + "".join(f"  {ln}\n" for ln in lines) + "}\n"


def diagnose(text: str, file: str = "case.plan") -> list[Diagnostic]:
    """Syntax errors if it does not parse, else everything check() reports."""
    try:
        module = parse(text, file)
    except DiagnosticError as e:
        return list(e.diagnostics)
    return check(module)


def errors(text: str) -> list[Diagnostic]:
    return [d for d in diagnose(text) if d.is_error]


def where(d: Diagnostic) -> str:
    assert d.span is not None
    return f"{d.span.line}:{d.span.col}"
