<<<<<<< HEAD
"""The real ONNX models the issue-24 benchmarks measure, prepared for IREE and cached on disk.

The PP-OCR det/cls/rec files come from the installed rapidocr-onnxruntime wheel; resnet18,
mobilenet_v3_small and squeezenet1_1 are exported from torchvision (random weights: speed only)
when torch is importable, else skipped. Preparation: opset 17, input dims pinned, shape
inference, onnxscript's optimizer (constant folding), IREE's ONNX import to MLIR text.
Everything lands under `$PLANC_BENCH_DIR` (default `~/.cache/planc/real-models`), keyed by the
source file's sha256, so a second run prepares nothing.
=======
"""ONNX models: IREE builds from planc's preparation vs ONNX Runtime on the same file, same inputs.

For each model: planc prepares it for fixed input types and compiles it for this host (through the
module cache), then IREE (local-task, what planrt picks for heavy modules) and an ONNX Runtime
session (CPU provider, its default graph optimizations and threads) run the same inputs in
alternating rounds, so load on a shared machine hits both; medians and the ratio are printed,
with the preparation time and the largest difference (of the largest reference value).

Usage: .venv/bin/python benchmarks/onnx_models.py [--repeat N] [--only NAME ...]
>>>>>>> main
"""

from __future__ import annotations

<<<<<<< HEAD
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
=======
import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "compiler" / "onnx_models"


def _models() -> list[tuple[str, Path, tuple[int, ...]]]:
    sys.path.insert(0, str(ROOT / "examples" / "ocr"))
    import setup_models

    wheel = setup_models.wheel_models()
    return [
        ("conv_op13 (torch legacy)", FIXTURES / "conv_op13.onnx", (2, 3, 16, 16)),
        ("encoder_dynamo_op18 (torch dynamo)", FIXTURES / "encoder_dynamo_op18.onnx", (2, 8, 16)),
        ("PP-OCRv4 det", wheel / setup_models.FILES["det.onnx"], (1, 3, 736, 1472)),
        ("PP-OCR cls", wheel / setup_models.FILES["cls.onnx"], (4, 3, 48, 192)),
        ("PP-OCRv4 rec", wheel / setup_models.FILES["rec.onnx"], (4, 3, 48, 320)),
    ]


def _host_target():
    from planc.compiler.codegen.targets import Target
    from planc.runtime.host.detect import detect

    return Target.parse("x86_64-avx512" if "avx512f" in detect(cuda=False).features else "x86_64-avx2")


def _build(path: Path, shape: tuple[int, ...]) -> tuple[bytes, float]:
    from planc.compiler.cache import Cache, onnx_store
    from planc.compiler.codegen.compile import CompileJob, compile_all
    from planc.compiler.hlo.stablehlo import normalize
    from planc.compiler.ir.graph import ModelDecl, ModelKind
    from planc.compiler.models.onnx_prepare import prepare_onnx
    from planc.dsl.ast import DType, TensorType

    t = time.perf_counter()
    prepared = prepare_onnx(ModelDecl("m", ModelKind.ONNX, path, "main"), [TensorType(DType.F32, shape)],
                            onnx_store())
    prep_s = time.perf_counter() - t
    target = _host_target()
    job = CompileJob("m", target, normalize(prepared.mlir, name="m"))
    return compile_all([job], cache=Cache.default(), progress=None)[("m", target)], prep_s


def _iree(vmfb: bytes):
    import iree.runtime as rt

    config = rt.Config("local-task")
    ctx = rt.SystemContext(vm_modules=[rt.VmModule.copy_buffer(config.vm_instance, vmfb)], config=config)
    fn = ctx.modules["m"]["main"]

    def run(x: np.ndarray) -> list[np.ndarray]:
        out = fn(x)
        return [np.asarray(o) for o in (out if isinstance(out, (tuple, list)) else [out])]
    return run


def _ort(path: Path):
    import onnxruntime as ort

    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    return lambda x: s.run(None, {name: x})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=10)
    p.add_argument("--only", nargs="*", default=None)
    args = p.parse_args(argv)
    rows = []
    for name, path, shape in _models():
        if args.only and not any(o in name for o in args.only):
            continue
        vmfb, prep_s = _build(path, shape)
        iree, ort = _iree(vmfb), _ort(path)
        x = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
        want, got = ort(x), iree(x)
        err = max(float(np.max(np.abs(g - w))) / max(float(np.max(np.abs(w))), 1e-30) for g, w in zip(got, want))
        ti, to = [], []
        for _ in range(args.repeat):
            t = time.perf_counter()
            iree(x)
            ti.append(time.perf_counter() - t)
            t = time.perf_counter()
            ort(x)
            to.append(time.perf_counter() - t)
        mi, mo = statistics.median(ti), statistics.median(to)
        rows.append((name, shape, prep_s, mi, mo, err))
        print(f"{name:<36} {list(shape)!s:<18} prep {prep_s:6.2f}s  IREE {mi * 1e3:9.2f} ms  "
              f"ORT {mo * 1e3:9.2f} ms  IREE/ORT {mi / mo:5.2f}  max diff {err:.1e}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
>>>>>>> main
