"""A parameter archive mapped once serves every module and context: one copy of the weights in memory."""

from __future__ import annotations

import mmap
from pathlib import Path

import numpy as np
import pytest
from planc.compiler.codegen.iree import compile_module
from planc.compiler.codegen.params import write_archive
from planc.compiler.codegen.targets import Target
from planc.runtime.engine.modules import Device, LoadedModule, ModuleError
from planc.runtime.engine.params import Parameters, aligned

pytestmark = pytest.mark.iree

N = 1024  # a 4 MiB weight
KEY = "w0"
MLIR = f"""module @m {{
  util.global private @w = #stream.parameter.named<"planc"::"{KEY}"> : tensor<{N}x{N}xf32>
  func.func @main(%x: tensor<1x{N}xf32>) -> tensor<1x{N}xf32> {{
    %w = util.global.load immutable @w : tensor<{N}x{N}xf32>
    %0 = stablehlo.dot_general %x, %w, contracting_dims = [1] x [0] : (tensor<1x{N}xf32>, tensor<{N}x{N}xf32>) -> tensor<1x{N}xf32>
    return %0 : tensor<1x{N}xf32>
  }}
}}
"""


def _rss() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS"))


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[bytes, Path, np.ndarray]:
    w = np.random.RandomState(0).standard_normal((N, N)).astype(np.float32)
    path = tmp_path_factory.mktemp("params") / "w.irpa"
    path.write_bytes(write_archive({KEY: w.tobytes()}))
    return compile_module(MLIR, Target.parse("x86_64-avx2"), module_name="m"), path, w


def _load(vmfb: bytes, params: Parameters, n: int) -> list[LoadedModule]:
    dev = Device("local-sync")
    return [LoadedModule(f"m{i}", dev, vmfb, ["f32"], ["f32"], params) for i in range(n)]


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmRSS from /proc")
def test_four_modules_share_one_mapped_copy(built):
    vmfb, path, w = built
    x = np.random.RandomState(1).standard_normal((1, N)).astype(np.float32)
    with open(path, "rb") as f:
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    before = _rss()
    mods = _load(vmfb, Parameters(memoryview(mapped), "planc", [KEY]), 4)
    outs = [m(x)[0] for m in mods]
    grown = _rss() - before
    for out in outs:
        np.testing.assert_allclose(out, x @ w, rtol=1e-4, atol=1e-3)
    # Four private copies would add 16 MiB; the mapped archive adds its 4 MiB once (plus IREE's own).
    assert grown < 2 * w.nbytes, f"RSS grew {grown / 2**20:.1f} MiB for 4 modules of {w.nbytes / 2**20:.0f} MiB"


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmRSS from /proc")
def test_an_unaligned_archive_is_copied_once_not_per_module(built):
    # What a Ray worker got before: the archive as bytes, off IREE's 64-byte boundary.
    vmfb, path, w = built
    data = path.read_bytes()
    raw = np.empty(len(data) + 128, np.uint8)
    start = -raw.ctypes.data % 64 + 8
    unaligned = raw[start:start + len(data)]
    unaligned[:] = np.frombuffer(data, np.uint8)
    x = np.random.RandomState(1).standard_normal((1, N)).astype(np.float32)
    before = _rss()
    mods = _load(vmfb, Parameters(unaligned, "planc", [KEY]), 4)
    outs = [m(x)[0] for m in mods]
    grown = _rss() - before
    for out in outs:
        np.testing.assert_allclose(out, x @ w, rtol=1e-4, atol=1e-3)
    # One aligned copy (4 MiB); IREE copying per module would add 16 MiB.
    assert grown < 2 * w.nbytes, f"RSS grew {grown / 2**20:.1f} MiB for 4 modules of {w.nbytes / 2**20:.0f} MiB"
    assert aligned(unaligned).ctypes.data % 64 == 0 and bytes(aligned(unaligned)) == data


def test_a_missing_parameter_is_a_clear_error(built):
    _, path, _ = built
    with pytest.raises(ModuleError, match="lacks 1 parameter"):
        Parameters(path.read_bytes(), "planc", [KEY, "nope"])


def test_without_its_parameters_a_module_does_not_load(built):
    vmfb, _, _ = built
    with pytest.raises(ModuleError, match="cannot be loaded"):
        LoadedModule("m", Device("local-sync"), vmfb, ["f32"], ["f32"])


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmRSS from /proc")
def test_modules_a_host_does_not_load_cost_it_no_memory(tmp_path):
    from planc.compiler.bundle.writer import write_bundle
    from planc.runtime.bundle.loader import load_bundle

    big = np.random.default_rng(0).bytes(16 << 20)  # a 16 MiB module of another target
    archive = write_archive({"k": bytes(range(256)) * 16})
    manifest = {"schema": 1, "plan": "p", "modules": {}, "tools": {},
                "parameters": {"path": "params/weights.irpa", "scope": "planc"}}
    write_bundle(tmp_path / "b.planb", manifest, {"modules/g0/cuda-sm80.vmfb": big, "params/weights.irpa": archive})
    before = _rss()
    bundle = load_bundle(tmp_path / "b.planb")  # hashes every byte, then gives the pages back
    grown = _rss() - before
    assert bundle.size("modules/g0/cuda-sm80.vmfb") == len(big) and bytes(bundle.read("params/weights.irpa")) == archive
    assert grown < 4 << 20, f"RSS grew {grown / 2**20:.1f} MiB after loading a bundle with a 16 MiB module"
    before = _rss()
    module = bundle.read("modules/g0/cuda-sm80.vmfb")  # copied out: then in memory once, not also mapped
    grown = _rss() - before
    assert module == big  # still there when asked for
    assert grown < 20 << 20, f"RSS grew {grown / 2**20:.1f} MiB reading a 16 MiB module"
