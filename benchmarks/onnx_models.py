"""ONNX models: IREE builds from planc's preparation vs ONNX Runtime on the same file, same inputs.

For each model: planc prepares it for fixed input types and compiles it for this host (through the
module cache), then IREE (local-task, what planrt picks for heavy modules) and an ONNX Runtime
session (CPU provider, its default graph optimizations and threads) run the same inputs in
alternating rounds, so load on a shared machine hits both; medians and the ratio are printed,
with the preparation time and the largest difference (of the largest reference value).

Usage: .venv/bin/python benchmarks/onnx_models.py [--repeat N] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "compiler" / "models" / "onnx_models"


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
