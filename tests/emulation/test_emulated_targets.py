"""Every example bundle runs through the real planrt on an emulated aarch64 and an emulated AVX2-only
Haswell, detects that CPU itself, picks its variants and matches JAX; wrong-CPU bundles fail clearly."""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from emu_helpers import Emulated, Example, assert_matches, probe, tool_env

pytestmark = [pytest.mark.emulation, pytest.mark.iree, pytest.mark.slow]

PLANS = ["defects", "triage", "sensors", "vib_screen"]
REPEAT = int(os.environ.get("PLANC_EMULATION_REPEAT", "3"))
NO_VARIANT = "no variant of module"


def _record(record_property, target: str, plan: str, got: Emulated) -> None:
    """What the terminal summary's emulation table shows for this example."""
    median = statistics.median(got.run_seconds) if got.run_seconds else None
    record_property("emulation", {"target": target, "plan": plan, "variants": sorted(set(got.summary["variants"]
                                  .values())), "wall_s": round(got.wall, 2),
                                  "run_ms": None if median is None else round(median * 1e3, 2)})


def _run(prefix_env, example: Example, tmp_path, *, repeat: int = REPEAT, **extra_env: str) -> Emulated:
    prefix, env = prefix_env
    return probe(prefix, example, tmp_path / "probe", {**env, **tool_env(tmp_path), **extra_env}, repeat=repeat)


def _planrt(prefix_env, example: Example, tmp_path, **extra_env: str) -> subprocess.CompletedProcess[str]:
    """`planrt run` itself (python -m planc.runtime.cli) in the emulated CPU."""
    prefix, env = prefix_env
    argv = [*prefix, "-m", "planc.runtime.cli", "run", str(example.bundle), "--no-journal", "--auto-approve"]
    for spec in example.input_args():
        argv += ["-i", spec]
    return subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path,
                          env={**env, **tool_env(tmp_path), **extra_env})


# ---------------------------------------------------------------- aarch64 NEON

@pytest.mark.parametrize("plan", PLANS)
def test_aarch64_runs_neon_variants_and_matches_jax(aarch64, examples, plan, tmp_path, record_property):
    example = examples[plan]
    got = _run(aarch64, example, tmp_path)
    assert got.rc == 0, got.stderr[-3000:]
    assert got.host["arch"] == "aarch64" and got.host["features"] == ["neon"], got.host
    assert got.host["source"] == "cpu: auxv AT_HWCAP"  # asked of the (emulated) CPU, not an override
    assert set(got.summary["variants"]) == set(example.variants)
    assert set(got.summary["variants"].values()) == {"aarch64-neon"}
    assert_matches(example, got)
    _record(record_property, "aarch64-neon (qemu-aarch64)", plan, got)


def test_aarch64_without_a_runnable_variant_fails_clearly(aarch64, examples, tmp_path):
    proc = _planrt(aarch64, examples["x86_only"], tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "\nplanrt: error: " + NO_VARIANT in "\n" + proc.stderr, proc.stderr  # after the unsigned notice
    assert "x86_64-avx512: host lacks " in proc.stderr and "x86_64" in proc.stderr.split("host lacks")[1]
    assert "host: aarch64 [neon]" in proc.stderr
    assert "Traceback" not in proc.stderr


# ---------------------------------------------------------------- x86-64 AVX2 only (Haswell)

@pytest.mark.parametrize("plan", PLANS)
def test_haswell_runs_avx2_variants_and_matches_jax(haswell, examples, plan, tmp_path, record_property):
    example = examples[plan]
    offered = {t for targets in example.variants.values() for t in targets}
    assert {"x86_64-avx512", "x86_64-avx2"} <= offered  # the better-ranked AVX-512 is there to refuse
    got = _run(haswell, example, tmp_path)
    assert got.rc == 0, got.stderr[-3000:]
    assert got.host["arch"] == "x86_64" and got.host["source"] == "cpu: cpuid", got.host
    assert "avx2" in got.host["features"] and not any(f.startswith("avx512") for f in got.host["features"])
    assert set(got.summary["variants"].values()) == {"x86_64-avx2"}
    assert_matches(example, got)
    _record(record_property, "x86_64-avx2 (qemu -cpu Haswell)", plan, got)


def test_haswell_without_an_avx2_variant_fails_clearly(haswell, examples, tmp_path):
    proc = _planrt(haswell, examples["x86_only"], tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "planrt: error: " + NO_VARIANT in proc.stderr, proc.stderr
    assert "x86_64-avx512: host lacks avx512bw" in proc.stderr
    assert "host: x86_64 [" in proc.stderr and "avx2" in proc.stderr.split("host: x86_64 [")[1]
    assert "Traceback" not in proc.stderr


def test_haswell_really_lacks_avx512(haswell, examples, tmp_path):
    # Forcing the AVX-512 variant on the emulated Haswell kills the process with SIGILL: the
    # emulator enforces the ISA, so the AVX2 choices above are what keeps planrt alive there.
    example = examples["x86_only"]
    proc = _planrt(haswell, example, tmp_path, PLANRT_HOST="x86_64:x86-64-v4")
    assert proc.returncode == -signal.SIGILL, proc.stderr[-2000:]
    if "avx512bw" not in Path("/proc/cpuinfo").read_text():
        pytest.skip("SIGILL shown; this machine has no AVX-512 to run the variant natively")
    # Natively (this CPU has AVX-512) the same variant runs and matches JAX.
    native = probe([sys.executable], example, tmp_path / "native", {**haswell[1], **tool_env(tmp_path)}, repeat=0)
    assert native.rc == 0, native.stderr[-3000:]
    assert set(native.summary["variants"].values()) == {"x86_64-avx512"}
    assert_matches(example, native)
