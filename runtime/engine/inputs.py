"""A run's inputs checked against the plan's declared names, dtypes and shapes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from planc.runtime.contract.manifest import TensorType
from planc.runtime.engine.modules import numpy_dtype

__all__ = ["CheckedInputs", "InputError", "InputSpec", "check_inputs"]


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
            d = t.to_json()
            if name not in inputs:
                raise InputError(f"missing input '{name}' ({d['dtype']}{d['shape']})")
            a = np.asarray(inputs[name])
            want = numpy_dtype(d["dtype"])
            if a.dtype.kind == "V" and a.dtype.itemsize == want.itemsize and want.kind == "V":
                a = a.view(want)  # a .npy of bf16 loads as raw 2-byte records
            if list(a.shape) != list(d["shape"]):
                raise InputError(f"input '{name}' has shape {list(a.shape)}, the plan declares "
                                 f"{d['dtype']}{d['shape']}")
            if a.dtype != want and not np.can_cast(a.dtype, want, casting="same_kind"):
                raise InputError(f"input '{name}' has dtype {a.dtype}, the plan declares {d['dtype']}")
            out[name] = np.asarray(a, dtype=want, order="C")  # ascontiguousarray would make 0-d 1-d
        return out


def _dtype_or_none(name: str) -> np.dtype | None:
    """The numpy dtype, or None where it needs a missing package (the slow path says so)."""
    try:
        return numpy_dtype(name)
    except Exception:  # noqa: BLE001 - ModuleError for bf16 without ml_dtypes
        return None
