"""benchmarks/gpu.py picks the GPU's cuda-smXX target and, without a GPU, fails at once saying why."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest
from emu_helpers import ROOT
from planc.runtime.host.detect import CudaDevice, Host, detect

SCRIPT = ROOT / "benchmarks" / "gpu.py"


def _gpu_module():
    spec = importlib.util.spec_from_file_location("planc_bench_gpu", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _host(*caps):
    return Host("x86_64", frozenset(), tuple(CudaDevice(i, f"gpu{i}", c) for i, c in enumerate(caps)))


@pytest.mark.parametrize(("caps", "target"), [
    (((9, 0),), "cuda-sm90"),     # H100
    (((10, 0),), "cuda-sm90"),    # newer: the newest PTX planc has
    (((8, 6),), "cuda-sm80"),     # RTX 30xx
    (((8, 0), (9, 0)), "cuda-sm90"),
    ((None,), "cuda-sm80"),       # capability unreadable: the oldest
])
def test_target_follows_compute_capability(caps, target):
    assert _gpu_module().pick_target(_host(*caps)) == target


def test_too_old_or_missing_gpu_is_named():
    gpu = _gpu_module()
    with pytest.raises(gpu.NoGpu, match="the GPU is sm_75; planc compiles for cuda-sm90, cuda-sm80 only"):
        gpu.pick_target(_host((7, 5)))
    with pytest.raises(gpu.NoGpu, match="no NVIDIA GPU found"):
        gpu.pick_target(_host())


def test_without_a_gpu_the_script_exits_2_with_the_reason():
    if detect().cuda:
        pytest.skip("this machine has a CUDA device: the script runs for real here")
    proc = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("gpu.py: no NVIDIA GPU found (CUDA probe: ")
    assert "Traceback" not in proc.stderr
