"""An ONNX model in ONNX Runtime's ORT format with its offline graph optimizations applied: the
optional ONNX Runtime candidate of an ONNX module on x86-64 (never CUDA or NEON, where IREE is the
only path). planrt runs it only where `planc[ort]` is installed and measurement chose it.

Two forms: `ort` (ORT_ENABLE_EXTENDED: fusions that hold on any x86-64 host) and `ort-nchwc`
(ORT_ENABLE_ALL: MLAS's NCHWc conv layout, tied to the SIMD width of the host that optimized it,
so built only for the compiling host's own target and checked against plain like every candidate).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from planc.compiler.codegen.targets import Target

__all__ = ["ORT_FORMS", "OrtFormError", "ort_format", "ort_forms_for"]

ORT_FORMS = ("ort", "ort-nchwc")


class OrtFormError(RuntimeError):
    """ONNX Runtime could not load or optimize the model; names the model."""


def ort_forms_for(target: Target, host_target: Target | None) -> tuple[str, ...]:
    """Which ORT forms a variant for `target` carries (none off x86-64)."""
    if target.spec.arch != "x86_64" or target.spec.backend.value != "llvm-cpu":
        return ()
    return ORT_FORMS if target is host_target and _same_simd(target) else ORT_FORMS[:1]


def _same_simd(target: Target) -> bool:
    """Whether this machine's vector width is the target's (NCHWc blocks by it: 16 floats with
    AVX-512, 8 with AVX2), so an `ort-nchwc` made here suits the target's hosts."""
    from planc.runtime.host.detect import detect

    return ("avx512f" in detect({}, cuda=False).features) == ("avx512f" in target.spec.features)


def ort_format(model: bytes | str, form: str = "ort", *, name: str = "model") -> bytes:
    """The ORT-format bytes of an ONNX model (its bytes, or its path: external data beside it is
    read) with the form's offline optimizations applied."""
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise OrtFormError(f"model '{name}': the ONNX Runtime candidate needs onnxruntime "
                           "(pip install 'planc[ort]')") from e
    level = {"ort": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
             "ort-nchwc": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}[form]
    with tempfile.TemporaryDirectory(prefix="planc-ort-") as tmp:
        out = Path(tmp) / "model.ort"
        so = ort.SessionOptions()
        so.graph_optimization_level = level
        so.optimized_model_filepath = str(out)
        so.log_severity_level = 3  # ORT warns that an NCHWc model is host-specific: that is why it is measured
        so.add_session_config_entry("session.save_model_format", "ORT")
        try:
            ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
        except Exception as e:
            raise OrtFormError(f"model '{name}': ONNX Runtime could not optimize it: {e}") from e
        return out.read_bytes()
