"""The IR's records: enums, declarations, value references and policies (the task records are in tasks.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeAlias

from planc.dsl import ast as A
from planc.dsl.ast import NO_SPAN, Span, TensorType
from planc.runtime.contract.builtins import Builtin

from planc.enums import TextEnum

__all__ = [
    "OUTPUT",
    "Arg",
    "BuiltinOp",
    "Carry",
    "Const",
    "CostFacts",
    "FailureAction",
    "GateDefault",
    "IRError",
    "ModelDecl",
    "ModelKind",
    "Objective",
    "Policy",
    "ToolDecl",
    "ToolKind",
    "ValueRef",
    "ValueType",
    "expr_refs",
]

# A value's type: a tensor, or None for a tool's opaque JSON result.
ValueType: TypeAlias = TensorType | None

# The name of the one output node; '<' cannot start a plan name, so it never collides.
OUTPUT = "<output>"


class IRError(ValueError):
    """IR built inconsistently by a pass (a compiler bug, not a user error)."""


class Objective(TextEnum):
    LATENCY = "latency"
    THROUGHPUT = "throughput"
    ENERGY = "energy"


class ModelKind(TextEnum, noun="model kind"):
    JAX = "jax"
    MLIR = "mlir"
    ONNX = "onnx"


class ToolKind(TextEnum, noun="tool kind"):
    EXEC = "exec"
    PYTHON = "python"


BuiltinOp = Builtin  # the runtime's vocabulary (runtime/contract/builtins.py)


class FailureAction(TextEnum, noun="failure action"):
    FAIL = "fail"
    SKIP = "skip"
    USE = "use"


class GateDefault(TextEnum, noun="gate default"):
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
    """`model NAME = jax "file.py:function" [weights "w.npz"]`, `mlir "file.mlir"` or `onnx "file.onnx"`;
    paths absolute."""

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
    """What a compute task costs, device-independently (counted from its StableHLO,
    hlo.counts): flops, fused memory traffic, the dispatches IREE is expected to
    form (1 when unknown), the bytes of every tensor it touches (0 when unknown) and the
    flops outside matmuls and convolutions."""

    flops: float
    bytes_accessed: float
    dispatches: int = 1
    working_set: float = 0.0
    vector_flops: float = 0.0


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
