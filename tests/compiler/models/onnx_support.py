"""Helpers for the ONNX tests: the fixture models, plans that use them, ONNX Runtime as the reference."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

MODELS = Path(__file__).with_name("onnx_models")
CONVS = ["conv_op13", "conv_op17", "conv_op20", "conv_dynamo_op18"]
ENCODERS = ["encoder_op14", "encoder_op17", "encoder_op20", "encoder_dynamo_op18"]
IMG, SEQ = (2, 3, 16, 16), (2, 8, 16)


def host_target() -> str:
    from planc.runtime.host.detect import detect

    return "x86_64-avx512" if "avx512f" in detect(cuda=False).features else "x86_64-avx2"


def write_plan(folder: Path, body: str, *, name: str = "p", files: tuple[str, ...] = ()) -> Path:
    """A .plan in `folder` (with the named fixture files copied beside it)."""
    folder.mkdir(parents=True, exist_ok=True)
    for f in files:
        (folder / f"{f}.onnx").write_bytes((MODELS / f"{f}.onnx").read_bytes())
    path = folder / f"{name}.plan"
    path.write_text(textwrap.dedent(body))
    return path


def ort_run(path: Path, *arrays: np.ndarray) -> list[np.ndarray]:
    import onnxruntime as ort

    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return [np.asarray(o) for o in s.run(None, {i.name: a for i, a in zip(s.get_inputs(), arrays)})]


def rel_err(got: np.ndarray, want: np.ndarray) -> float:
    """max |got - want| / max |want| (the check planc's compile-time comparison makes)."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    return float(np.max(np.abs(got - want)) / max(float(np.max(np.abs(want))), 1e-30))
