"""ONNX models exported from PyTorch (a convnet at opset 13, a transformer encoder from the dynamo
exporter) run through the real planrt on an emulated aarch64 (NEON variants) and an emulated AVX2-only
Haswell (AVX2 variants), and match ONNX Runtime within 1e-4 relative."""

from __future__ import annotations

import importlib.util
import os
import sys
import textwrap

import numpy as np
import pytest
from emu_helpers import CPU_TARGETS, ROOT, Example, probe

pytestmark = [pytest.mark.emulation, pytest.mark.iree, pytest.mark.slow]

PLAN = """\
plan onnx_emu {
  target %s
  input img: f32[1, 3, 16, 16]
  input seq: f32[1, 8, 16]
  model conv = onnx "conv_op13.onnx"
  model enc = onnx "encoder_dynamo_op18.onnx"
  task c = conv(img)
  task e = enc(seq)
  output c, e.0, e.1
}
"""


def _support():
    spec = importlib.util.spec_from_file_location("_onnx_support", ROOT / "tests" / "compiler" / "models" / "onnx_support.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def onnx_example(tmp_path_factory) -> Example:
    from planc.compiler.bundle.build import BuildOptions, build_bundle

    base = tmp_path_factory.getbasetemp()
    os.environ.setdefault("PLANC_CACHE_DIR", str((base.parent if "PYTEST_XDIST_WORKER" in os.environ else base)
                                                 / "planc-cache"))
    sup = _support()
    folder = tmp_path_factory.mktemp("onnx-emu")
    path = sup.write_plan(folder, textwrap.dedent(PLAN % ", ".join(CPU_TARGETS)), name="onnx_emu",
                          files=("conv_op13", "encoder_dynamo_op18"))
    built = build_bundle(path, folder / "onnx_emu.planb", options=BuildOptions(progress=None))
    rng = np.random.default_rng(3)
    img, seq = rng.random((1, 3, 16, 16), dtype=np.float32), rng.standard_normal((1, 8, 16)).astype(np.float32)
    np.save(folder / "img.npy", img)
    np.save(folder / "seq.npy", seq)
    conv = sup.ort_run(folder / "conv_op13.onnx", img)
    enc = sup.ort_run(folder / "encoder_dynamo_op18.onnx", seq)
    expected = {"c": conv[0], "e.0": enc[0], "e.1": enc[1]}
    variants = {m: tuple(sorted(r["variants"])) for m, r in built.manifest["modules"].items()}
    return Example("onnx_emu", built.path, {"img": folder / "img.npy", "seq": folder / "seq.npy"}, expected,
                   "completed", variants)


def _check(prefix_env, example: Example, tmp_path, target: str) -> None:
    prefix, env = prefix_env
    got = probe(prefix, example, tmp_path / "probe", env, repeat=1)
    assert got.rc == 0, got.stderr[-3000:]
    assert set(got.summary["variants"].values()) == {target}, got.summary["variants"]
    sup = _support()
    for name, want in example.expected.items():
        value = got.outputs[name.replace(".", "_")] if name not in got.outputs else got.outputs[name]
        assert sup.rel_err(value, want) < 1e-4, name


def test_aarch64_neon_builds_match_onnx_runtime(aarch64, onnx_example, tmp_path):
    _check(aarch64, onnx_example, tmp_path, "aarch64-neon")


def test_haswell_avx2_builds_match_onnx_runtime(haswell, onnx_example, tmp_path):
    _check(haswell, onnx_example, tmp_path, "x86_64-avx2")
