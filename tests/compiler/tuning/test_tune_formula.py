"""The fuller fitted cost formula: combination, two-level memory, per-dispatch cost and vector rate
recovered from synthetic measurements; tuned-profile round trip; the local-sync / local-task crossover."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from planc.compiler.costs.formula import MAX_BLEND, combination_name, combine, memory_time
from planc.compiler.costs.model import ComputeFacts
from planc.compiler.costs.profiles import load_profile
from planc.compiler.costs.tuned_model import DeviceFit, Tuning, load_tuning
from planc.compiler.tuning.crossover import NEVER, _crossing, crossover_flops, with_crossover
from planc.compiler.tuning.fit import KindModel
from planc.compiler.tuning.fit_full import fit_full
from planc.compiler.tuning.tune import Measurement, fit

PROFILE = load_profile()
AVX512 = PROFILE.devices["x86_64-avx512"]
LLC = 2.0 * (1 << 20)


def _truth(blend: float) -> DeviceFit:
    peaks = {dt: v * 150e9 / AVX512.peak("f32") for dt, v in AVX512.peak_flops.items()}
    return DeviceFit(peaks, 20e9, 3e-6, per_dispatch=1.5e-6, cache_bandwidth=80e9, llc_bytes=LLC, blend=blend,
                     vector_rate=0.25)


def _facts(rng: np.random.Generator, i: int) -> ComputeFacts:
    flops = float(10 ** rng.uniform(3, 8.5))
    nbytes = float(10 ** rng.uniform(3, 7.5))
    vector = flops * float(rng.choice([0.0, 0.1, 1.0]))
    return ComputeFacts(flops, nbytes, "f32", int(rng.integers(1, 5)), key=f"m{i}", working_set=nbytes * 0.8,
                        vector_flops=vector)


def _measured(truth: DeviceFit, n: int = 40, noise: float = 0.0, seed: int = 0) -> list[Measurement]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        f = _facts(rng, i)
        t = truth.time(f.flops / truth.peak_flops["f32"], f) * math.exp(rng.normal(0, noise))
        out.append(Measurement(f"m{i}", "x86_64-avx512", "local-sync", f, t, 0.1 * t, 20))
    return out


def test_combinations():
    assert combine(3.0, 4.0, 1.0) == pytest.approx(7.0)
    assert combine(3.0, 4.0, MAX_BLEND) == pytest.approx(4.0)
    assert 4.0 < combine(3.0, 4.0, 3.0) < 7.0
    assert combine(3.0, 4.0, 0.0, serial=0.5) == pytest.approx(5.5)  # the older form
    assert [combination_name(b) for b in (1.0, 2.5, MAX_BLEND)] == ["sum", "blend p=2.50", "max"]


def test_two_level_memory():
    small, big = memory_time([1e6, 1e6], [1e6, 8e6], 10e9, 40e9, 2e6)
    assert small == pytest.approx(1e6 / 40e9)  # fits: all at cache speed
    assert big == pytest.approx(1e6 * (0.25 / 40e9 + 0.75 / 10e9))  # a quarter fits
    assert memory_time(1e6, 1e6, 10e9) == pytest.approx(1e-4)  # one level when the cache is unknown


@pytest.mark.parametrize("blend, name", [(1.0, "sum"), (MAX_BLEND, "max"), (3.0, "blend")])
def test_fit_recovers_the_formula_and_its_combination(blend, name):
    truth = _truth(blend)
    ms = _measured(truth)
    model, rms, which = fit_full(ms, KindModel(AVX512), (LLC,))
    assert which == name and rms < 0.02
    full = model.full
    assert full is not None
    assert full.peak_flops["f32"] == pytest.approx(150e9, rel=0.1)
    assert full.mem_bandwidth == pytest.approx(20e9, rel=0.1)
    assert full.vector_rate == pytest.approx(0.25, rel=0.1)
    assert full.per_dispatch == pytest.approx(1.5e-6, rel=0.25)
    held = _measured(truth, n=10, seed=1)
    err = [abs(model.predict(m.facts) / m.median - 1) for m in held]
    assert max(err) < 0.05


def test_fit_picks_the_cache_level_that_fits():
    ms = _measured(_truth(1.0), noise=0.02)
    _, rms_right, _ = fit_full(ms, KindModel(AVX512), (LLC,))
    _, rms_best, _ = fit_full(ms, KindModel(AVX512), (LLC / 16, LLC, LLC * 64))
    assert rms_best == pytest.approx(rms_right, abs=1e-9)


def test_full_tuned_profile_round_trips(tmp_path):
    result = fit(_measured(_truth(3.0)), PROFILE, overrides=False, llc_bytes=LLC)
    result = with_crossover(result, {"x86_64-avx512": 3.5e7})
    path = tmp_path / "tuned.toml"
    path.write_text(result.tuning.to_toml())
    text = path.read_text()
    for key in ("per_dispatch_us", "cache_bandwidth_gbs", "llc_mb = 2.0", "blend", "vector_rate",
                "local_task_gflop = 0.035"):
        assert key in text
    back = load_tuning(path).devices["x86_64-avx512"]
    fitted = result.tuning.devices["x86_64-avx512"]
    for attr in ("per_dispatch", "cache_bandwidth", "llc_bytes", "blend", "vector_rate", "local_task_flops",
                 "mem_bandwidth", "dispatch_overhead"):
        assert getattr(back, attr) == pytest.approx(getattr(fitted, attr), rel=1e-9), attr


def test_crossover_is_interpolated_on_log_flops():
    assert _crossing([(1e6, -1.0), (1e8, 1.0)]) == pytest.approx(1e7)
    assert _crossing([(1e6, 0.5), (1e8, 1.0)]) == 1e6  # local-task wins throughout
    assert _crossing([(1e6, -1.0), (1e8, -0.1)]) == NEVER
    assert _crossing([(1e6, 0.2), (1e7, -0.3), (1e8, 0.3)]) == pytest.approx(10 ** 7.5)  # a lone early win
    f = ComputeFacts(2e6, 1e4, "f32")
    ms = [Measurement(f"crossover_100@{d}", "x86_64-avx2", d, f, t, 0.0, 5)
          for d, t in (("local-sync", 1e-4), ("local-task", 2e-4))]
    ms += [Measurement(f"crossover_200@{d}", "x86_64-avx2", d, replace(f, flops=2e8), t, 0.0, 5)
           for d, t in (("local-sync", 2e-2), ("local-task", 1e-2))]
    assert crossover_flops(ms)["x86_64-avx2"] == pytest.approx(2e7)
    assert crossover_flops([]) == {}
    assert with_crossover(fit([], PROFILE), {"x86_64-avx2": 1.0}).tuning == Tuning()
