"""AST of the .plan language: frozen, slotted records with source spans."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Union

from planc.runtime.contract.builtins import BUILTIN_NAMES
from planc.runtime.contract.dtypes import DType

__all__ = [
    "BUILTINS",
    "DURATION_UNITS",
    "After",
    "Backoff",
    "BoolOp",
    "Breaker",
    "Carry",
    "Clause",
    "Compare",
    "Cost",
    "DType",
    "Default",
    "Duration",
    "Expr",
    "Gate",
    "Ident",
    "Input",
    "Loop",
    "Model",
    "Module",
    "Not",
    "Number",
    "Objective",
    "OnFailure",
    "Output",
    "Plan",
    "Prob",
    "Ref",
    "Retry",
    "Span",
    "Stmt",
    "String",
    "Target",
    "Task",
    "TensorType",
    "Timeout",
    "Tool",
    "When",
    "expr_refs",
]


@dataclass(frozen=True, slots=True)
class Span:
    """A source range; lines and columns are 1-based, the end is exclusive."""

    file: str
    line: int
    col: int
    end_line: int
    end_col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


NO_SPAN = Span("<none>", 0, 0, 0, 0)


def _span() -> Span:
    # Spans never take part in equality, so parse(format(ast)) == ast holds.
    return field(default=NO_SPAN, compare=False, repr=False)  # type: ignore[return-value]


BUILTINS = BUILTIN_NAMES
DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True, slots=True)
class TensorType:
    dtype: DType
    shape: tuple[int, ...]
    span: Span = _span()

    def __str__(self) -> str:
        return f"{self.dtype.value}[{', '.join(map(str, self.shape))}]"

    @property
    def nbytes(self) -> int:
        n = self.dtype.itemsize
        for d in self.shape:
            n *= d
        return n


@dataclass(frozen=True, slots=True)
class Ident:
    name: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Ref:
    """A use of a value: `name` or `name.INDEX` (a part of a tuple result)."""

    name: str
    index: int | None = None
    span: Span = _span()

    def __str__(self) -> str:
        return self.name if self.index is None else f"{self.name}.{self.index}"


@dataclass(frozen=True, slots=True)
class Number:
    value: int | float
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class String:
    value: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Duration:
    value: float
    unit: str
    span: Span = _span()

    @property
    def seconds(self) -> float:
        return self.value * DURATION_UNITS[self.unit]

    def __str__(self) -> str:
        v = int(self.value) if float(self.value).is_integer() else self.value
        return f"{v}{self.unit}"


@dataclass(frozen=True, slots=True)
class Compare:
    op: str
    left: Expr
    right: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class BoolOp:
    op: str  # "and" | "or"
    operands: tuple[Expr, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Not:
    operand: Expr
    span: Span = _span()


Expr = Union[Compare, BoolOp, Not, Ref, Number]


def expr_refs(expr: Expr | None) -> Iterator[Ref]:
    """The value references in an expression, left to right (none for None)."""
    stack: list = [] if expr is None else [expr]
    while stack:
        e = stack.pop()
        if isinstance(e, Ref):
            yield e
        elif isinstance(e, Compare):
            stack += [e.right, e.left]
        elif isinstance(e, BoolOp):
            stack += reversed(e.operands)
        elif isinstance(e, Not):
            stack.append(e.operand)


# Clauses (policies and modifiers that follow a task, gate or loop).
@dataclass(frozen=True, slots=True)
class When:
    expr: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Retry:
    count: int
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Backoff:
    low: Duration
    high: Duration
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Timeout:
    duration: Duration
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Breaker:
    failures: int
    window: Duration
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class OnFailure:
    action: Ident  # skip | fail | use
    fallback: Ident | None = None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Cost:
    duration: Duration
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class After:
    names: tuple[Ident, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Prob:
    """Expected probability that a guarded task runs (for the optimizer)."""

    value: Number
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Default:
    decision: Ident  # approve | reject
    span: Span = _span()


Clause = Union[When, Retry, Backoff, Timeout, Breaker, OnFailure, Cost, After, Prob, Default]


# Statements.
@dataclass(frozen=True, slots=True)
class Target:
    names: tuple[Ident, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Objective:
    name: Ident
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Input:
    name: Ident
    type: TensorType
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Model:
    name: Ident
    kind: Ident  # jax | mlir | onnx
    source: String
    weights: String | None = None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Tool:
    name: Ident
    kind: Ident  # exec | python
    source: String
    returns: TensorType | None = None  # None: the result is opaque JSON
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Task:
    name: Ident
    callee: Ident
    args: tuple[Ref | Number | String, ...]
    clauses: tuple[Clause, ...] = ()
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Gate:
    name: Ident
    value: Ref
    clauses: tuple[Clause, ...] = ()
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Carry:
    name: Ident
    init: Ref
    next: Ref
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Loop:
    name: Ident
    max_iter: int
    until: Expr
    body: tuple[Carry | Task | Gate, ...]
    expect: Number | None = None
    clauses: tuple[Clause, ...] = ()
    span: Span = _span()
    max_span: Span = _span()  # where `max N` is written, for diagnostics


@dataclass(frozen=True, slots=True)
class Output:
    refs: tuple[Ref, ...]
    span: Span = _span()


Stmt = Union[Target, Objective, Input, Model, Tool, Task, Gate, Loop, Output]


@dataclass(frozen=True, slots=True)
class Plan:
    name: Ident
    body: tuple[Stmt, ...]
    span: Span = _span()

    def stmts(self, kind: type) -> list:
        """Statements of one kind, in source order (loop bodies not included)."""
        return [s for s in self.body if isinstance(s, kind)]


@dataclass(frozen=True, slots=True)
class Module:
    """A parsed .plan file: its plans, and its comments (for the formatter).

    `comments` holds (line, text) of every comment; `trailing_comment_lines` the
    lines where a comment follows code (the others are whole-line comments).
    """

    plans: tuple[Plan, ...]
    comments: tuple[tuple[int, str], ...] = field(default=(), compare=False)
    file: str = field(default="<string>", compare=False)
    trailing_comment_lines: frozenset[int] = field(default=frozenset(), compare=False)
