"""The IR's records: enums, declarations, values and one frozen record per task kind."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Self, TypeAlias

from planc.dsl import ast as A
from planc.dsl.ast import NO_SPAN, Span, TensorType

if TYPE_CHECKING:
    from planc.compiler.ir import PlanGraph

__all__ = [
    "OUTPUT",
    "Arg",
    "BuiltinOp",
    "BuiltinTask",
    "Carry",
    "ComputeTask",
    "Const",
    "CostFacts",
    "FailureAction",
    "GateDefault",
    "GateTask",
    "GroupTask",
    "IRError",
    "InputTask",
    "LoopTask",
    "ModelDecl",
    "ModelKind",
    "Objective",
    "OutputTask",
    "Policy",
    "Task",
    "ToolDecl",
    "ToolKind",
    "ToolTask",
    "ValueRef",
    "ValueType",
    "expr_refs",
    "format_number",
    "format_seconds",
    "format_value_type",
]

# A value's type: a tensor, or None for a tool's opaque JSON result.
ValueType: TypeAlias = TensorType | None

# The name of the one output node; '<' cannot start a plan name, so it never collides.
OUTPUT = "<output>"



class IRError(ValueError):
    """IR built inconsistently by a pass (a compiler bug, not a user error)."""


class _Parse(enum.Enum):
    @classmethod
    def parse(cls, text: str) -> Self:
        for member in cls:
            if member.value == text:
                return member
        expected = ", ".join(m.value for m in cls)
        raise ValueError(f"unknown {cls.__name__.lower()} '{text}', expected one of: {expected}")


class Objective(_Parse):
    LATENCY = "latency"
    THROUGHPUT = "throughput"
    ENERGY = "energy"


class ModelKind(_Parse):
    JAX = "jax"
    MLIR = "mlir"


class ToolKind(_Parse):
    EXEC = "exec"
    PYTHON = "python"


class BuiltinOp(_Parse):
    MAX = "max"
    MIN = "min"
    MEAN = "mean"
    SUM = "sum"
    ARGMAX = "argmax"


class FailureAction(_Parse):
    FAIL = "fail"
    SKIP = "skip"
    USE = "use"


class GateDefault(_Parse):
    APPROVE = "approve"
    REJECT = "reject"


@dataclass(frozen=True, slots=True)
class ValueRef:
    """A use of a value: task `task`'s result, or part `index` of its tuple result."""

    task: str
    index: int | None = None
    span: Span = field(default=NO_SPAN, compare=False, repr=False)

    def __str__(self) -> str:
        return self.task if self.index is None else f"{self.task}.{self.index}"


@dataclass(frozen=True, slots=True)
class Const:
    """A literal argument (tools only): a JSON number or string."""

    value: int | float | str
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


Arg: TypeAlias = ValueRef | Const


@dataclass(frozen=True, slots=True)
class ModelDecl:
    """`model NAME = jax "file.py:function" [weights "w.npz"]` or `mlir "file.mlir"`; paths absolute."""

    name: str
    kind: ModelKind
    path: Path
    function: str  # the Python function, or the MLIR entry function ("main")
    weights: Path | None = None
    span: Span = field(default=NO_SPAN, compare=False, repr=False)
    weights_span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class ToolDecl:
    """`tool NAME = exec "path"` or `python "file.py:function"`, optionally `returns TYPE`."""

    name: str
    kind: ToolKind
    path: Path
    function: str | None = None
    returns: TensorType | None = None  # None: the result is opaque JSON
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Policy:
    """A tool task's failure handling; durations in seconds."""

    retry: int = 0
    backoff: tuple[float, float] | None = None
    timeout: float | None = None
    breaker: tuple[int, float] | None = None  # (failures, window)
    on_failure: FailureAction = FailureAction.FAIL
    fallback: ValueRef | None = None  # with on_failure USE
    cost: float | None = None  # expected latency until measured


@dataclass(frozen=True, slots=True)
class CostFacts:
    """What a compute task costs, device-independently (from JAX's cost analysis)."""

    flops: float
    bytes_accessed: float


@dataclass(frozen=True, slots=True)
class Carry:
    """`carry NAME = INIT then NEXT`: loop state; `type` is set (and `typed`) by infer-types."""

    name: str
    init: ValueRef
    next: ValueRef
    span: Span = field(default=NO_SPAN, compare=False, repr=False)
    type: ValueType = None
    typed: bool = False


def expr_refs(expr: A.Expr | None) -> Iterator[A.Ref]:
    """The value references in a guard or `until` expression, left to right."""
    return A.expr_refs(expr)


def _as_value_ref(ref: A.Ref) -> ValueRef:
    return ValueRef(ref.name, ref.index, ref.span)


@dataclass(frozen=True, slots=True, kw_only=True)
class Task:
    """Fields every node has. Subclasses add their own; a new kind (e.g. a merged group)
    only overrides the hooks below and is then printed, verified and linked like the rest.

    `results` holds one type per value in `values()` (None: opaque JSON); it is empty
    until infer-types has run, except for inputs.
    """

    kind: ClassVar[str] = "task"
    name: str
    span: Span = field(default=NO_SPAN, compare=False, repr=False)
    args: tuple[Arg, ...] = ()
    guard: A.Expr | None = None
    prob: float | None = None
    after: tuple[str, ...] = ()
    results: tuple[ValueType, ...] = ()

    def uses(self) -> Iterator[ValueRef]:
        """Every value this node reads: args, guard, then kind-specific ones."""
        for a in self.args:
            if isinstance(a, ValueRef):
                yield a
        for r in expr_refs(self.guard):
            yield _as_value_ref(r)

    def defines(self) -> tuple[str, ...]:
        """Task names whose values this node produces for the graph it is in."""
        return (self.name,)

    def values(self) -> tuple[ValueRef, ...]:
        """The values this node produces, in result order."""
        return (ValueRef(self.name),)

    def nested(self) -> tuple[Task, ...]:
        """Records inside this one (a loop body, a group's members), for printing and walks."""
        return ()

    def callee(self) -> str:
        """What the printer shows after the kind: `@model`, `@tool`, a builtin op, a loop's name."""
        return ""

    def attributes(self) -> tuple[tuple[str, str], ...]:
        """Extra `key=value` pairs the printer shows in braces."""
        return ()

    @property
    def typed(self) -> bool:
        return bool(self.results) or not self.values()

    def value_type(self, ref: ValueRef) -> ValueType:
        """The type of one of this node's values; IRError if untyped or not produced here."""
        values = self.values()
        if not self.results or ref not in values:
            raise IRError(f"'{ref}' has no known type at node '{self.name}'")
        return self.results[values.index(ref)]


@dataclass(frozen=True, slots=True, kw_only=True)
class InputTask(Task):
    kind: ClassVar[str] = "input"
    type: TensorType


@dataclass(frozen=True, slots=True, kw_only=True)
class ComputeTask(Task):
    """A model call; a model returning a tuple has values `name.0`, `name.1`, ..."""

    kind: ClassVar[str] = "compute"
    model: str
    facts: CostFacts | None = None
    tuple_result: bool = False

    def callee(self) -> str:
        return f"@{self.model}"

    def values(self) -> tuple[ValueRef, ...]:
        if self.tuple_result:
            return tuple(ValueRef(self.name, i) for i in range(len(self.results)))
        return (ValueRef(self.name),)

    def attributes(self) -> tuple[tuple[str, str], ...]:
        if self.facts is None:
            return ()
        return (("flops", format_number(self.facts.flops)), ("bytes", format_number(self.facts.bytes_accessed)))


@dataclass(frozen=True, slots=True, kw_only=True)
class BuiltinTask(Task):
    kind: ClassVar[str] = "builtin"
    op: BuiltinOp

    def callee(self) -> str:
        return self.op.value


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolTask(Task):
    kind: ClassVar[str] = "tool"
    tool: str
    policy: Policy = Policy()

    def callee(self) -> str:
        return f"@{self.tool}"

    def uses(self) -> Iterator[ValueRef]:
        yield from Task.uses(self)
        if self.policy.fallback is not None:
            yield self.policy.fallback

    def attributes(self) -> tuple[tuple[str, str], ...]:
        p, out = self.policy, []
        if p.retry:
            out.append(("retry", str(p.retry)))
        if p.backoff is not None:
            out.append(("backoff", f"{format_seconds(p.backoff[0])}..{format_seconds(p.backoff[1])}"))
        if p.timeout is not None:
            out.append(("timeout", format_seconds(p.timeout)))
        if p.breaker is not None:
            out.append(("breaker", f"{p.breaker[0]}/{format_seconds(p.breaker[1])}"))
        if p.on_failure is not FailureAction.FAIL:
            use = f" %{p.fallback}" if p.fallback is not None else ""
            out.append(("on_failure", p.on_failure.value + use))
        if p.cost is not None:
            out.append(("cost", format_seconds(p.cost)))
        return tuple(out)


@dataclass(frozen=True, slots=True, kw_only=True)
class GateTask(Task):
    """A person's review of args[0]; its value is the approved value."""

    kind: ClassVar[str] = "gate"
    timeout: float | None = None
    default: GateDefault = GateDefault.REJECT

    def attributes(self) -> tuple[tuple[str, str], ...]:
        timeout = () if self.timeout is None else (("timeout", format_seconds(self.timeout)),)
        return (*timeout, ("default", self.default.value))


@dataclass(frozen=True, slots=True, kw_only=True)
class LoopTask(Task):
    """A bounded loop. `body` is a PlanGraph of the body's tasks and gates; `args` are the
    outer values it reads (carry inits first); `exports` the body values used after it,
    which this node produces for the outer graph (results parallel to exports)."""

    kind: ClassVar[str] = "loop"
    max_iter: int
    until: A.Expr
    body: PlanGraph
    carries: tuple[Carry, ...] = ()
    exports: tuple[ValueRef, ...] = ()
    expect: float | None = None

    def uses(self) -> Iterator[ValueRef]:
        yield from Task.uses(self)

    def defines(self) -> tuple[str, ...]:
        return tuple(d for t in self.body.tasks() for d in t.defines())

    def callee(self) -> str:
        return self.name

    def values(self) -> tuple[ValueRef, ...]:
        return tuple(ValueRef(r.task, r.index) for r in self.exports)

    def nested(self) -> tuple[Task, ...]:
        return tuple(self.body.task(n) for n in self.body.topo_order())

    @property
    def typed(self) -> bool:
        return len(self.results) == len(self.exports) and all(c.typed for c in self.carries)


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupTask(Task):
    """Compute tasks merged into one module (the merge pass makes them). `members` run in
    order inside one dispatch; `args` are the values they read from outside; `exports` the
    member values used outside (results parallel to exports). A single jax or mlir model
    call is a group of one, so every module the bundle carries is a group."""

    kind: ClassVar[str] = "group"
    members: tuple[Task, ...]
    exports: tuple[ValueRef, ...] = ()
    device: str | None = None
    facts: CostFacts | None = None

    def defines(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.members)

    def values(self) -> tuple[ValueRef, ...]:
        return tuple(ValueRef(r.task, r.index) for r in self.exports)

    def nested(self) -> tuple[Task, ...]:
        return self.members

    def callee(self) -> str:
        return "{" + ", ".join(m.name for m in self.members) + "}"

    def attributes(self) -> tuple[tuple[str, str], ...]:
        out: list[tuple[str, str]] = []
        if self.device is not None:
            out.append(("device", self.device))
        if self.facts is not None:
            out += [("flops", format_number(self.facts.flops)), ("bytes", format_number(self.facts.bytes_accessed))]
        return tuple(out)


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputTask(Task):
    """The plan's one sink: its args are the plan's outputs, in order."""

    kind: ClassVar[str] = "output"
    name: str = OUTPUT

    def defines(self) -> tuple[str, ...]:
        return ()

    def values(self) -> tuple[ValueRef, ...]:
        return ()


def format_number(x: float) -> str:
    """A float as the printer shows it: 3.0 as 3, else its shortest repr."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def format_seconds(s: float) -> str:
    """A duration the way the language writes it: 100ms, 2s, 30m, 1h."""
    for unit, size in (("h", 3600.0), ("m", 60.0), ("s", 1.0)):
        if s >= size and (s / size).is_integer():
            return f"{int(s / size)}{unit}"
    ms = s * 1000.0
    return f"{round(ms)}ms" if abs(ms - round(ms)) < 1e-9 else f"{s!r}s"


def format_value_type(t: ValueType) -> str:
    return "json" if t is None else f"{t.dtype.value}[{','.join(map(str, t.shape))}]"
