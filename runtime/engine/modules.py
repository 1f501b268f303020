"""Loaded IREE modules and the hot path: device buffers in, device buffers out."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import iree.runtime as rt
import numpy as np
from planc.runtime.contract.dtypes import DType
from planc.runtime.contract.dtypes import numpy_dtype as _numpy_dtype

__all__ = ["DTYPES", "Device", "LoadedModule", "ModuleError", "VariantList", "numpy_dtype"]

# Manifest dtype name -> (numpy dtype name, HAL element type).
DTYPES: dict[str, tuple[str, object]] = {d.value: (d.numpy, getattr(rt.HalElementType, d.info.hal)) for d in DType}


VariantList = rt.VmVariantList  # an IREE argument or result list
_DEVICE_LOCAL = int(rt.MemoryType.DEVICE_LOCAL)
_USAGE = int(rt.BufferUsage.DEFAULT)
_VariantList = VariantList
_BufferView = rt.HalBufferView


_DL_CPU = 1  # DLPack's device type for host memory


class _DLPack:
    """Hands one DLPack capsule to `np.from_dlpack`."""

    __slots__ = ("capsule",)

    def __init__(self, capsule):
        self.capsule = capsule

    def __dlpack__(self, stream=None, **_):
        return self.capsule

    def __dlpack_device__(self):
        return (_DL_CPU, 0)


class ModuleError(RuntimeError):
    """A module failed to load or to run; names the module and the driver."""


def numpy_dtype(name: str) -> np.dtype:
    try:
        return _numpy_dtype(name)
    except ImportError as e:  # ml_dtypes is optional: only plans with bf16 values need it
        raise ModuleError("bf16 values need the 'ml_dtypes' package") from e


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
        self._dlpack = driver.startswith("local-")  # buffers in host memory, readable in place

    def to_device(self, array: np.ndarray, dtype: str):
        """Copy a host array into a device buffer view (a copy: never aliasing
        an unaligned numpy buffer, which IREE's zero-copy import crashes on)."""
        want = numpy_dtype(dtype)
        arr = array if type(array) is np.ndarray and array.dtype == want else np.asarray(array, dtype=want)
        if not arr.flags.c_contiguous:
            arr = np.asarray(arr, order="C")
        return self.allocator.allocate_buffer_copy(_DEVICE_LOCAL, _USAGE, self.hal, arr, DTYPES[dtype][1])

    def to_host(self, view, dtype: str) -> np.ndarray:
        """A host copy of a buffer view (or of the VmRef of one, as IREE's result lists hold them)."""
        if isinstance(view, rt.VmRef):
            view = view.deref(_BufferView)
        if self._dlpack:
            # Host memory on a local driver: DLPack gives numpy the buffer without IREE's
            # DeviceArray machinery (a third of the time); a dtype DLPack lacks (bf16) falls back.
            try:
                arr = np.from_dlpack(_DLPack(self.hal.create_dlpack_capsule(view, _DL_CPU, 0)))
            except (RuntimeError, TypeError, ValueError, BufferError):
                arr = None
            if arr is not None and arr.dtype == numpy_dtype(dtype):
                return arr.copy()
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

    def __init__(self, name: str, device: Device, vmfb: bytes, inputs: list[str], outputs: list[str],
                 params: object | None = None):
        self.name = name
        self.device = device
        self.sig = _Sig(inputs, outputs)
        try:
            self.module = rt.VmModule.copy_buffer(device.instance, vmfb)
            # `params` (engine/params.py) resolves the module's named weights from the bundle's archive.
            extra = [params.module(device.instance)] if params is not None else []  # type: ignore[attr-defined]
            self.context = rt.VmContext(device.instance, modules=[device._hal_module, *extra, self.module])
            fn = self.module.lookup_function("main")
        except (RuntimeError, ValueError) as e:
            raise ModuleError(f"module '{name}' cannot be loaded on driver '{device.driver}': {e}") from e
        if fn is None:
            raise ModuleError(f"module '{name}' has no function 'main'")
        self.function = fn
        self._n_out = len(outputs)
        self._out_range = range(len(outputs))
        self._lock = threading.Lock()  # one VM context is not re-entrant

    def call(self, args):
        """The executor's hot path: a VmVariantList of argument refs in, IREE's result list out
        (its refs stay on the device; the list may serve as the next module's argument list)."""
        ret = _VariantList(self._n_out)
        try:
            with self._lock:
                self.context.invoke(self.function, args, ret)
        except (RuntimeError, ValueError) as e:  # iree raises ValueError for arguments it refuses
            raise ModuleError(f"module '{self.name}' failed on driver '{self.device.driver}': {e}") from e
        return ret

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
