"""An ONNX Runtime candidate build of a module, run where the optional `planc[ort]` extra is installed.

It looks like a LoadedModule to the executor: buffer views on a host-memory IREE device
(local-sync) in and out, so values pass to and from IREE modules unchanged. The model is the ORT
format file planc stored in the bundle (offline graph optimizations applied, verified like every
member); ORT runs it on one intra-op thread unless `threads` says otherwise.
"""

from __future__ import annotations

import threading

import numpy as np
from planc.runtime.engine.modules import Device, ModuleError, VariantList, _BufferView

__all__ = ["ORT_DRIVER", "OrtModule", "ort_available"]

ORT_DRIVER = "ort"


def ort_available() -> bool:
    """Whether onnxruntime can be imported here (the `planc[ort]` extra)."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


class OrtModule:
    """One ONNX Runtime session over an ORT-format model, on a host-memory IREE device."""

    def __init__(self, name: str, device: Device, model: bytes, inputs: list[str], outputs: list[str],
                 *, threads: int = 1):
        import onnxruntime as ort
        from planc.runtime.engine.modules import _Sig

        self.name = name
        self.device = device
        self.sig = _Sig(inputs, outputs)
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.add_session_config_entry("session.load_model_format", "ORT")
        # ORT's default level on top of the offline optimizations: on an ORT-format model it applies
        # only what is left for load time, and that is measurably faster than none (mobilenet_v3_small
        # 6.32 ms against 7.75 ms with ORT_DISABLE_ALL, cls 2.45 against 2.81 ms, one thread).
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
        except Exception as e:
            raise ModuleError(f"module '{name}' cannot be loaded by ONNX Runtime: {e}") from e
        self._names = [i.name for i in self.session.get_inputs()]
        self._n_out = len(outputs)
        self._lock = threading.Lock()

    def _run(self, arrays: list) -> list:
        try:
            with self._lock:
                return self.session.run(None, dict(zip(self._names, arrays)))
        except Exception as e:
            raise ModuleError(f"module '{self.name}' failed in ONNX Runtime: {e}") from e

    def invoke(self, views: list) -> list:
        arrays = [self.device.to_host(v, t) for v, t in zip(views, self.sig.inputs)]
        outs = self._run(arrays)
        return [self.device.to_device(o, t) for o, t in zip(outs, self.sig.outputs)]

    def call(self, args):
        """The executor's hot path: an IREE argument list in, an IREE result list out."""
        views = [args.get_as_ref(i).deref(_BufferView) for i in range(len(args))]
        ret = VariantList(self._n_out)
        for v in self.invoke(views):
            ret.push_ref(v)
        return ret

    def __call__(self, *arrays):
        """Convenience host-to-host call (tests, tuning)."""
        return [np.asarray(o) for o in self._run(list(arrays))]
