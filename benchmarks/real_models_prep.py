"""The real ONNX models the issue-24 benchmarks measure, prepared for IREE and cached on disk.

The PP-OCR det/cls/rec files come from the installed rapidocr-onnxruntime wheel; resnet18,
mobilenet_v3_small and squeezenet1_1 are exported from torchvision (random weights: speed only)
when torch is importable, else skipped. Preparation: opset 17, input dims pinned, shape
inference, onnxscript's optimizer (constant folding), IREE's ONNX import to MLIR text.
Everything lands under `$PLANC_BENCH_DIR` (default `~/.cache/planc/real-models`), keyed by the
source file's sha256, so a second run prepares nothing.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MODELS", "Model", "bench_dir", "prepared"]


@dataclass(frozen=True)
class Model:
    name: str
    shape: tuple[int, ...]  # the pinned input shape (NCHW, f32)
    source: str             # "rapidocr:FILE" or "torchvision:NAME"


MODELS = (
    Model("ppocr-rec", (1, 3, 48, 320), "rapidocr:ch_PP-OCRv4_rec_infer.onnx"),
    Model("ppocr-det", (1, 3, 320, 320), "rapidocr:ch_PP-OCRv4_det_infer.onnx"),
    Model("ppocr-cls", (1, 3, 48, 192), "rapidocr:ch_ppocr_mobile_v2.0_cls_infer.onnx"),
    Model("resnet18", (1, 3, 224, 224), "torchvision:resnet18"),
    Model("mobilenet_v3_small", (1, 3, 224, 224), "torchvision:mobilenet_v3_small"),
    Model("squeezenet1_1", (1, 3, 224, 224), "torchvision:squeezenet1_1"),
)


def bench_dir() -> Path:
    d = Path(os.environ.get("PLANC_BENCH_DIR", Path.home() / ".cache" / "planc" / "real-models"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def _source(model: Model) -> Path | None:
    kind, name = model.source.split(":", 1)
    if kind == "rapidocr":
        import rapidocr_onnxruntime

        return Path(rapidocr_onnxruntime.__file__).parent / "models" / name
    out = bench_dir() / f"{name}.torch.onnx"
    if out.exists():
        return out
    try:
        import torch
        import torchvision
    except ImportError:
        return None
    net = getattr(torchvision.models, name)(weights=None).eval()
    torch.onnx.export(net, (torch.zeros(model.shape),), str(out), input_names=["x"], output_names=["y"],
                      opset_version=17, dynamo=False)
    return out


def _prepare_onnx(src: Path, shape: tuple[int, ...], dst: Path) -> None:
    import onnx
    import onnxscript.optimizer
    from onnx import shape_inference, version_converter

    m = onnx.load(str(src))
    if m.opset_import[0].version < 17:
        m = version_converter.convert_version(m, 17)
    inp = m.graph.input[0]
    for d, n in zip(inp.type.tensor_type.shape.dim, shape):
        d.ClearField("dim_param")
        d.dim_value = n
    for o in m.graph.output:  # let inference fill the output dims in from the pinned input
        o.type.tensor_type.ClearField("shape")
    del m.graph.value_info[:]  # stale intermediate shapes (some say -1) would contradict the pins
    m = shape_inference.infer_shapes(m, strict_mode=True, data_prop=True)
    m = onnxscript.optimizer.optimize(m)
    m = shape_inference.infer_shapes(m, strict_mode=True, data_prop=True)
    onnx.save(m, str(dst))


def prepared(model: Model) -> tuple[Path, Path] | None:
    """(prepared .onnx, imported .mlir) for a model, or None when its source is unavailable."""
    src = _source(model)
    if src is None:
        return None
    key = hashlib.sha256(src.read_bytes() + repr(model.shape).encode()).hexdigest()[:16]
    onnx_path = bench_dir() / f"{model.name}.{key}.onnx"
    mlir_path = bench_dir() / f"{model.name}.{key}.mlir"
    if not onnx_path.exists():
        tmp = onnx_path.with_suffix(".tmp.onnx")
        _prepare_onnx(src, model.shape, tmp)
        tmp.replace(onnx_path)
    if not mlir_path.exists():
        tmp = mlir_path.with_suffix(".tmp.mlir")
        subprocess.run([sys.executable, "-m", "iree.compiler.tools.import_onnx", str(onnx_path),
                        "-o", str(tmp)], check=True)
        tmp.replace(mlir_path)
    return onnx_path, mlir_path


if __name__ == "__main__":
    for m in MODELS:
        print(m.name, prepared(m))
