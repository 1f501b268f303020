"""The builtin reductions a plan may call, and the dtype each gives (the compiler types, the runtime computes)."""

from __future__ import annotations

from planc.runtime.contract.dtypes import DType

from planc.enums import TextEnum

__all__ = ["BUILTIN_NAMES", "Builtin"]


class Builtin(TextEnum, noun="builtin"):
    """A builtin reduction to a rank-0 scalar; the value is its name in .plan files and manifests."""

    MAX = "max"
    MIN = "min"
    MEAN = "mean"
    SUM = "sum"
    ARGMAX = "argmax"

    def result_dtype(self, dtype: DType) -> DType:
        """The dtype of the result: `max`, `min` keep the dtype; `mean` of integers is f32; `sum` of
        bool is i32; `argmax` is the flat index as i32 (as jnp.argmax gives it without x64)."""
        if self is Builtin.ARGMAX:
            return DType.I32
        if self is Builtin.MEAN and not dtype.is_float:
            return DType.F32
        if self is Builtin.SUM and dtype is DType.BOOL:
            return DType.I32
        return dtype


BUILTIN_NAMES: tuple[str, ...] = tuple(b.value for b in Builtin)
