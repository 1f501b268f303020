"""Run-time values: device-resident tensors, host arrays and opaque JSON, converted lazily."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from planc.runtime.engine.modules import Device, numpy_dtype

__all__ = ["SKIPPED", "Value", "from_json", "to_json"]


class _Skipped:
    def __repr__(self) -> str:
        return "SKIPPED"


SKIPPED: Any = _Skipped()  # the value of a skipped task, and of everything that needs it


@dataclass(slots=True)
class Value:
    """A tensor that lives on a device, on the host, or both; or an opaque JSON value.

    Consecutive modules on one device pass `view` along with no host round trip;
    the host copy is made once, the first time something on the host needs it."""

    dtype: str | None = None  # None: opaque JSON (a tool result without a declared type)
    view: Any = None
    device: Device | None = None
    host: Any = None

    @classmethod
    def from_host(cls, array: Any, dtype: str | None) -> Value:
        if dtype is None:
            return cls(None, host=array)
        return cls(dtype, host=np.asarray(array, dtype=numpy_dtype(dtype)))

    def to_host(self) -> Any:
        if self.host is None and self.view is not None:
            assert self.device is not None and self.dtype is not None
            self.host = self.device.to_host(self.view, self.dtype)
        return self.host

    def on(self, device: Device):
        """The buffer view on `device`, copying through the host when it lives elsewhere."""
        if self.view is not None and self.device is device:
            return self.view
        assert self.dtype is not None
        view = device.to_device(self.to_host(), self.dtype)
        if self.view is None:
            self.view, self.device = view, device
        return view


def to_json(value: Any) -> Any:
    """A JSON-able form of a value (arrays become nested lists, numpy scalars Python numbers)."""
    if isinstance(value, Value):
        value = value.to_host()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    return value


def from_json(data: Any, type_: dict | None) -> Value:
    """A value from JSON, converted to the declared TYPE when there is one (ValueError if it does not fit)."""
    if type_ is None:
        return Value(None, host=data)
    arr = np.asarray(data, dtype=numpy_dtype(type_["dtype"]))
    if list(arr.shape) != list(type_["shape"]):
        raise ValueError(f"expected shape {type_['shape']}, got {list(arr.shape)}")
    return Value(type_["dtype"], host=arr)
