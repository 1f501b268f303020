"""A run's inputs checked against the plan's declared names, dtypes and shapes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from planc.runtime.contract.manifest import TensorType
from planc.runtime.engine.modules import numpy_dtype

__all__ = ["CheckedInputs", "InputError", "InputSpec", "check_inputs", "convert_input"]


class InputError(ValueError):
    """An input is missing, unknown, or of the wrong type or shape; names it."""


def check_inputs(declared: Mapping[str, TensorType], inputs: Mapping[str, Any]) -> CheckedInputs:
    """Inputs converted to the declared dtypes (`Bundle.records.inputs`); an InputError names any mismatch."""
    return InputSpec(declared).check(inputs)


class CheckedInputs(dict):  # type: ignore[type-arg]  # dict[str, np.ndarray]
    """A run's inputs as one InputSpec checked and converted them: the run takes them as they are,
    so inputs are checked once per run however many layers hand them on (api.Plan, the Runner)."""

    __slots__ = ("spec",)

    def __init__(self, spec: InputSpec, arrays: Mapping[str, np.ndarray]):
        super().__init__(arrays)
        self.spec = spec


class InputSpec:
    """The plan's declared inputs, read once (names, numpy dtypes, shapes), checking each run's."""

    def __init__(self, declared: Mapping[str, TensorType]):
        self.declared = dict(declared)
        self.fast = tuple((n, _dtype_or_none(t.dtype.value), t.shape, t.dtype.value)
                          for n, t in self.declared.items())

    def check(self, inputs: Mapping[str, Any]) -> CheckedInputs:
        """Inputs converted to the declared dtypes; an InputError names any mismatch. Inputs this
        spec checked already are returned as they are."""
        if type(inputs) is CheckedInputs and inputs.spec is self:
            return inputs
        out = {}
        for name, want, shape, _ in self.fast:
            a = inputs.get(name)
            # The common case, checked cheaply: the right array already (used as it is; the
            # copy to the device makes it C-ordered where it is not).
            if type(a) is np.ndarray and (a.dtype is want or a.dtype == want) and a.shape == shape:
                out[name] = a
            else:
                break
        else:
            if len(inputs) == len(out):
                return CheckedInputs(self, out)
        return CheckedInputs(self, self._convert(inputs))

    def _convert(self, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        declared = self.declared
        unknown = sorted(set(inputs) - set(declared))
        if unknown:
            raise InputError(f"unknown input(s) {', '.join(unknown)}; the plan takes: {', '.join(declared) or 'none'}")
        out = {}
        for name, t in declared.items():
            if name not in inputs:
                raise InputError(f"missing input '{name}' ({t.dtype.value}{list(t.shape)})")
            a = np.asarray(inputs[name])
            want = numpy_dtype(t.dtype.value)
            if a.dtype.kind == "V" and a.dtype.itemsize == want.itemsize and want.kind == "V":
                a = a.view(want)  # a .npy of bf16 loads as raw 2-byte records
            if a.shape != t.shape:
                raise InputError(f"input '{name}' has shape {list(a.shape)}, the plan declares {t}")
            out[name] = np.asarray(convert_input(name, a, want, t.dtype.value), order="C")
        return out


def convert_input(name: str, a: np.ndarray, want: np.dtype, declared: str) -> np.ndarray:
    """`a` as `want`, under the one rule of `planrt run`, `plan.run` and `planrt serve`: a value
    converts only where every element keeps its value. Booleans stay booleans; integers go to an
    integer type that holds them, or to a float type that represents them exactly; floats go to a
    float type (rounded) where no finite value overflows to infinity; floats never become integers."""
    if a.dtype == want:
        return a
    src, dst = _kind(a.dtype), _kind(want)
    found = f"input '{name}' has dtype {a.dtype}, the plan declares {declared}"
    if src != dst and not (src == "i" and dst == "f"):
        raise InputError(f"{found}; {_NAMES.get(src, str(a.dtype))} values are not converted to "
                         f"{_NAMES.get(dst, declared)}")
    if a.size == 0:
        return a.astype(want)
    if src == "i" and dst == "i" and not np.can_cast(a.dtype, want, casting="safe"):
        info = np.iinfo(want)
        lo, hi = int(a.min()), int(a.max())
        if lo < info.min or hi > info.max:
            raise InputError(f"{found}; {hi if hi > info.max else lo} does not fit {declared}")
    if src == "i" and dst == "f":
        bound = 2.0 ** (_finfo(want).nmant + 1)  # every integer up to this is exact
        big = np.abs(a.astype(np.float64)).max()
        if big > bound:
            raise InputError(f"{found}; {int(big)} is not exact in {declared}")
    with np.errstate(over="ignore", invalid="ignore"):
        out = a.astype(want)
    if src == "f" and dst == "f":
        lost = np.isfinite(a) & ~np.isfinite(out.astype(np.float64))
        if lost.any():
            raise InputError(f"{found}; {float(a[lost].reshape(-1)[0])!r} overflows {declared}")
    return out


_NAMES = {"b": "boolean", "i": "integer", "f": "floating-point"}


def _kind(dt: np.dtype) -> str:
    if dt.kind in "iu":
        return "i"
    if dt.kind == "V" and dt.name == "bfloat16" or dt.kind == "f":
        return "f"
    return dt.kind


def _finfo(dt: np.dtype) -> Any:
    if dt.name == "bfloat16":
        import ml_dtypes

        return ml_dtypes.finfo(dt)
    return np.finfo(dt)


def _dtype_or_none(name: str) -> np.dtype | None:
    """The numpy dtype, or None where it needs a missing package (the slow path says so)."""
    try:
        return numpy_dtype(name)
    except Exception:  # noqa: BLE001 - ModuleError for bf16 without ml_dtypes
        return None
