"""The IR's task records: one frozen record per task kind, and how they print their numbers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from planc.compiler.ir.records import (
    OUTPUT,
    Arg,
    BuiltinOp,
    Carry,
    CostFacts,
    FailureAction,
    GateDefault,
    IRError,
    Policy,
    ValueRef,
    ValueType,
    _as_value_ref,
    expr_refs,
)
from planc.dsl import ast as A
from planc.dsl.ast import NO_SPAN, Span, TensorType

__all__ = [
    "BuiltinTask",
    "ComputeTask",
    "GateTask",
    "GroupTask",
    "InputTask",
    "LoopTask",
    "OutputTask",
    "Task",
    "ToolTask",
    "format_number",
    "format_seconds",
    "format_value_type",
]


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


class Body(Protocol):
    """What a loop needs of its body graph (a PlanGraph, ir/graph.py, which builds on these tasks)."""

    def tasks(self) -> Iterator[Task]: ...

    def task(self, name: str) -> Task: ...

    def topo_order(self) -> tuple[str, ...]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class LoopTask(Task):
    """A bounded loop. `body` is a PlanGraph of the body's tasks and gates; `args` are the
    outer values it reads (carry inits first); `exports` the body values used after it,
    which this node produces for the outer graph (results parallel to exports)."""

    kind: ClassVar[str] = "loop"
    max_iter: int
    until: A.Expr
    body: Body  # a PlanGraph
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
