"""Loaded IREE modules and the hot path: device buffers in, device buffers out."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import iree.runtime as rt
import numpy as np

__all__ = ["DTYPES", "Device", "LoadedModule", "ModuleError", "numpy_dtype"]

# Manifest dtype name -> (numpy dtype name, HAL element type).
DTYPES: dict[str, tuple[str, object]] = {
    "f32": ("float32", rt.HalElementType.FLOAT_32),
    "f16": ("float16", rt.HalElementType.FLOAT_16),
    "bf16": ("bfloat16", rt.HalElementType.BFLOAT_16),
    "i8": ("int8", rt.HalElementType.SINT_8),
    "i32": ("int32", rt.HalElementType.SINT_32),
    "i64": ("int64", rt.HalElementType.SINT_64),
    "bool": ("bool", rt.HalElementType.BOOL_8),
}


_VariantList = rt.VmVariantList
_BufferView = rt.HalBufferView


class ModuleError(RuntimeError):
    """A module failed to load or to run; names the module and the driver."""


def numpy_dtype(name: str) -> np.dtype:
    np_name = DTYPES[name][0]
    if np_name == "bfloat16":
        try:
            import ml_dtypes  # optional: only plans with bf16 values need it
        except ImportError as e:
            raise ModuleError("bf16 values need the 'ml_dtypes' package") from e
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(np_name)


class Device:
    """One IREE driver instance (local-sync, local-task or cuda) and its HAL module."""

    def __init__(self, driver: str):
        self.driver = driver
        try:
            self.config = rt.Config(driver)
        except (RuntimeError, ValueError) as e:
            raise ModuleError(f"cannot open IREE driver '{driver}': {e}") from e
        self.instance = self.config.vm_instance
        self.hal = self.config.device
        self.allocator = self.hal.allocator
        self._hal_module = rt.create_hal_module(self.instance, self.hal)

    def to_device(self, array: np.ndarray, dtype: str):
        """Copy a host array into a device buffer view (a copy: never aliasing
        an unaligned numpy buffer, which IREE's zero-copy import crashes on)."""
        arr = np.asarray(array, dtype=numpy_dtype(dtype), order="C")
        return self.allocator.allocate_buffer_copy(
            memory_type=rt.MemoryType.DEVICE_LOCAL,
            allowed_usage=rt.BufferUsage.DEFAULT,
            device=self.hal,
            buffer=arr,
            element_type=DTYPES[dtype][1],
        )

    def to_host(self, view, dtype: str) -> np.ndarray:
        arr = rt.DeviceArray(self.hal, view, implicit_host_transfer=True, override_dtype=numpy_dtype(dtype))
        return np.array(arr.to_host(), copy=True)


@dataclass
class _Sig:
    inputs: list[str]
    outputs: list[str]


class LoadedModule:
    """One compiled module variant in its own VM context on a Device.

    `invoke` is the hot path: a prebuilt argument list of device buffer views,
    raw `VmContext.invoke`, results left on the device."""

    def __init__(self, name: str, device: Device, vmfb: bytes, inputs: list[str], outputs: list[str]):
        self.name = name
        self.device = device
        self.sig = _Sig(inputs, outputs)
        try:
            self.module = rt.VmModule.copy_buffer(device.instance, vmfb)
            self.context = rt.VmContext(device.instance, modules=[device._hal_module, self.module])
            fn = self.module.lookup_function("main")
        except (RuntimeError, ValueError) as e:
            raise ModuleError(f"module '{name}' cannot be loaded on driver '{device.driver}': {e}") from e
        if fn is None:
            raise ModuleError(f"module '{name}' has no function 'main'")
        self.function = fn
        self._n_out = len(outputs)
        self._out_range = range(len(outputs))
        self._lock = threading.Lock()  # one VM context is not re-entrant

    def invoke(self, views: list) -> list:
        args = _VariantList(len(views))
        for v in views:
            args.push_ref(v)
        ret = _VariantList(self._n_out)
        try:
            with self._lock:
                self.context.invoke(self.function, args, ret)
        except (RuntimeError, ValueError) as e:  # iree raises ValueError for arguments it refuses
            raise ModuleError(f"module '{self.name}' failed on driver '{self.device.driver}': {e}") from e
        get = ret.get_as_ref
        return [get(i).deref(_BufferView) for i in self._out_range]

    def __call__(self, *arrays: np.ndarray) -> list[np.ndarray]:
        """Convenience host-to-host call (tests, tuning); the executor uses invoke()."""
        views = [self.device.to_device(a, t) for a, t in zip(arrays, self.sig.inputs)]
        outs = self.invoke(views)
        return [self.device.to_host(v, t) for v, t in zip(outs, self.sig.outputs)]
