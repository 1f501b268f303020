"""planc tune without IREE: the fit recovers known parameters, statistics, tuned-profile files,
the tuned model's fitted devices and facts guards, trace reading, the report and the plot."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from planc.compiler.costs.model import ComputeFacts, RooflineModel
from planc.compiler.costs.profiles import ProfileError, load_profile
from planc.compiler.costs.tuned_model import DeviceFit, TunedModel, Tuning, load_tuning
from planc.compiler.tuning.fit import KindModel, fit_kind, leave_one_out
from planc.compiler.tuning.tune import (
    Measurement,
    TaskTimes,
    TuneError,
    fit,
    format_changes,
    format_report,
    kendall_tau,
    mape,
    plot,
    predict,
    read_traces,
    report,
    tool_latencies,
)
from planc.runtime.journal.clock import FakeClock
from planc.runtime.journal.trace import Tracer

PROFILE = load_profile()
AVX512 = PROFILE.devices["x86_64-avx512"]
# What the host "really" is in these tests: 150 GFLOP/s, 40 GB/s, 4 us per dispatch.
TRUE = replace(AVX512, peak_flops={dt: v * 150e9 / AVX512.peak("f32") for dt, v in AVX512.peak_flops.items()},
               mem_bandwidth=40e9, dispatch_overhead=4e-6)
# (flops, bytes): dispatch-bound, memory-bound and compute-bound modules.
SHAPES = [(1e3, 1e3), (2e4, 3e4), (1e5, 2e6), (3e5, 8e6), (5e6, 4e5), (3e7, 1e6), (2e8, 3e6), (1e4, 2e5),
          (8e6, 3e6), (6e5, 6e5)]


def _measurements(spec=TRUE, noise: float = 0.0, kind: str = "x86_64-avx512", seed: int = 0,
                  shapes=SHAPES, serial: float = 0.0) -> list[Measurement]:
    rng = np.random.default_rng(seed)
    out = []
    for i, (flops, nbytes) in enumerate(shapes):
        facts = ComputeFacts(flops, nbytes, "f32", key=f"m{i}")
        t = predict(facts, spec, serial) * math.exp(rng.normal(0, noise))
        out.append(Measurement(f"m{i}", kind, "local-sync", facts, t, 0.1 * t, 20))
    return out


def test_predict_is_the_cost_models_formula():
    dep = PROFILE.deployments["x86-only"]
    model = RooflineModel(PROFILE, dep)
    for flops, nbytes in SHAPES:
        facts = ComputeFacts(flops, nbytes, "f32")
        assert predict(facts, AVX512) == model.compute_time(facts, "cpu0")


@pytest.mark.parametrize("noise, serial", [(0.0, 0.0), (0.0, 1.0), (0.0, 0.4), (0.05, 0.0), (0.05, 1.0)])
def test_fit_recovers_known_parameters_from_a_wrong_datasheet(noise, serial):
    wrong = replace(AVX512, mem_bandwidth=512e9, dispatch_overhead=0.0)
    model, rms = fit_kind(_measurements(noise=noise, serial=serial), KindModel(wrong))
    fitted = model.spec
    tol = 0.02 if noise == 0 else 0.15
    assert model.serial == pytest.approx(serial, abs=0.02 if noise == 0 else 0.3)
    assert fitted.peak("f32") == pytest.approx(150e9, rel=tol)
    assert fitted.peak("i8") / fitted.peak("f32") == pytest.approx(AVX512.peak("i8") / AVX512.peak("f32"))
    assert fitted.mem_bandwidth == pytest.approx(40e9, rel=tol)
    assert fitted.dispatch_overhead == pytest.approx(4e-6, rel=tol)
    assert rms < (0.01 if noise == 0 else 0.1)


def test_an_unseen_parameter_stays_at_the_datasheet():
    compute_bound = [(f, 1.0) for f, _ in SHAPES]  # no module moves memory: bandwidth is not observable
    fitted = fit_kind(_measurements(shapes=compute_bound), KindModel(AVX512))[0].spec
    assert fitted.mem_bandwidth == pytest.approx(AVX512.mem_bandwidth, rel=0.05)
    assert fitted.peak("f32") == pytest.approx(150e9, rel=0.02)


def test_fit_writes_a_tuned_profile():
    ms = _measurements()
    probe = Measurement("probe_add_16", "x86_64-avx512", "local-sync", ComputeFacts(16, 192, "f32"),
                        4e-6, 0, 5, source="probe")
    few = _measurements(kind="x86_64-avx2")[:2]
    unknown = _measurements(kind="riscv-x")[:4]
    previous = Tuning(tools={"old": 0.5}, compute={"kept": {"vmvx": 1.0}}, facts={"kept": (1.0, 2.0)})
    result = fit([*ms, probe, *few, *unknown], PROFILE, tools={"notify": 0.02}, previous=previous)
    assert [k.kind for k in result.kinds] == ["x86_64-avx512"]
    assert dict(result.skipped) == {"x86_64-avx2": "2 module(s) measured, 3 needed for a fit",
                                    "riscv-x": "not a device kind of the profile"}
    t = result.tuning
    assert set(t.devices) == {"x86_64-avx512"}
    assert t.compute["m0"]["x86_64-avx512"] == ms[0].median
    assert t.compute["m0"]["x86_64-avx2"] == few[0].median
    assert "probe_add_16" not in t.compute and t.facts["m3"] == (SHAPES[3][0], SHAPES[3][1])
    assert dict(t.tools) == {"old": 0.5, "notify": 0.02} and t.compute["kept"]["vmvx"] == 1.0
    assert not fit(ms, PROFILE, overrides=False).tuning.compute


def test_tuned_profile_round_trips_and_drives_the_model(tmp_path):
    result = fit(_measurements(), PROFILE, tools={"notify": 0.02})
    path = tmp_path / "tuned.toml"
    path.write_text(result.tuning.to_toml())
    again = load_tuning(path)
    fitted = result.kinds[0].after.spec
    assert again.devices["x86_64-avx512"].mem_bandwidth == pytest.approx(fitted.mem_bandwidth)
    assert dict(again.facts) == dict(result.tuning.facts) and dict(again.tools) == {"notify": 0.02}
    base = RooflineModel(PROFILE, "x86-only")
    tuned = TunedModel(base, again)
    fresh = ComputeFacts(3e6, 1e6, "f32")  # never measured: the fitted roofline prices it
    assert tuned.compute_time(fresh, "cpu0") == pytest.approx(result.kinds[0].after.predict(fresh))
    assert tuned.compute_time(fresh, "cpu0") != pytest.approx(base.compute_time(fresh, "cpu0"))
    batch = tuned.compute_times(np.array([[3e6]]), np.array([1e6]), ["f32"], "cpu0")
    assert batch[0] == pytest.approx(tuned.compute_time(fresh, "cpu0"))
    m3 = result.tuning.compute["m3"]["x86_64-avx512"]
    assert tuned.compute_time(ComputeFacts(*SHAPES[3], "f32", key="m3"), "cpu0") == m3  # measured
    other = ComputeFacts(SHAPES[3][0] * 5, SHAPES[3][1], "f32", key="m3")  # same name, another group
    assert tuned.compute_time(other, "cpu0") == pytest.approx(result.kinds[0].after.predict(other))


FIT = 'schema = 1\n[devices.x]\npeak_gflops = { f32 = 1.0 }\nmem_bandwidth_gbs = 1.0\ndispatch_us = 1.0\n'


def test_serial_fraction_in_the_tuned_model(tmp_path):
    base = RooflineModel(PROFILE, "x86-only")
    fit_ = DeviceFit({"f32": 1e11}, 1e10, 1e-6, serial=0.5)
    path = tmp_path / "t.toml"
    path.write_text(Tuning(devices={"x86_64-avx512": fit_}).to_toml())
    tuned = TunedModel(base, load_tuning(path))
    facts = ComputeFacts(2e6, 1e5, "f32")  # 20 us of compute, 10 us of memory
    assert tuned.compute_time(facts, "cpu0") == pytest.approx(1e-6 + 20e-6 + 0.5 * 10e-6)
    batch = tuned.compute_times(np.array([[2e6], [1e3]]), np.array([1e5, 1e6]), ["f32"], "cpu0")
    assert batch == pytest.approx([tuned.compute_time(facts, "cpu0"),
                                   tuned.compute_time(ComputeFacts(1e3, 1e6, "f32"), "cpu0")])


@pytest.mark.parametrize("text, key", [
    (FIT + 'serial = 2.0\n', "devices.x.serial"),
    ('schema = 1\n[devices.x]\npeak_gflops = { f32 = 1.0 }\nmem_bandwidth_gbs = 1.0\n',
     "devices.x.dispatch_us"),
    ('schema = 1\n[devices.x]\npeak_gflops = { f99 = 1.0 }\nmem_bandwidth_gbs = 1.0\ndispatch_us = 1.0\n',
     "devices.x.peak_gflops.f99"),
    ('schema = 1\n[devices.x]\npeak_gflops = { f32 = 1.0 }\nmem_bandwidth_gbs = 0.0\ndispatch_us = 1.0\n',
     "devices.x.mem_bandwidth_gbs"),
    ('schema = 1\n[devices.x]\nspeed = 3\n', "devices.x.speed"),
    ('schema = 1\n[facts.g0]\nflops = 1.0\n', "facts.g0"),
    ('schema = 1\n[facts.g0]\nflops = 1.0\nbytes = 2.0\n', "facts.g0.bytes"),
])
def test_tuned_profile_errors_name_the_key(tmp_path, text, key):
    path = tmp_path / "t.toml"
    path.write_text(text)
    with pytest.raises(ProfileError) as err:
        load_tuning(path)
    assert err.value.key == key


def test_device_fit_by_instance_wins_over_kind():
    base = RooflineModel(PROFILE, "edge-x86-arm")
    slow = DeviceFit({"f32": 1e9}, 1e9, 1e-3)
    fast = DeviceFit({"f32": 1e12}, 1e11, 1e-6)
    tuned = TunedModel(base, Tuning(devices={"x86_64-avx2": slow, "cpu0": fast}))
    facts = ComputeFacts(1e6, 1e3, "f32")
    assert tuned.compute_time(facts, "cpu0") == pytest.approx(1e-6 + 1e6 / 1e12)
    assert tuned.compute_time(facts, "cpu1") == base.compute_time(facts, "cpu1")  # aarch64: not fitted


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), min_size=2, max_size=30))
def test_kendall_tau_matches_scipy(pairs):
    from scipy.stats import kendalltau

    a, b = [p[0] for p in pairs], [p[1] for p in pairs]
    ref = kendalltau(a, b).statistic
    ours = kendall_tau(a, b)
    assert (math.isnan(ours) and math.isnan(ref)) or ours == pytest.approx(ref)


def test_mape_and_leave_one_out():
    assert mape([1.1, 0.9], [1.0, 1.0]) == pytest.approx(0.1) and math.isnan(mape([], []))
    held = leave_one_out(_measurements(), PROFILE, min_modules=3)
    ms = {m.module: m for m in _measurements()}
    assert set(held) == {(m, "x86_64-avx512") for m in ms}
    assert mape([held[(m, "x86_64-avx512")] for m in ms], [ms[m].median for m in ms]) < 0.02


def test_report_table_changes_and_plot(tmp_path):
    ms = _measurements(noise=0.05)
    result = fit(ms, PROFILE)
    rep = report(ms, {"x86_64-avx512": KindModel(AVX512)}, result, leave_one_out(ms, PROFILE))
    assert rep.mape("after") < 0.1 < rep.mape("before") and rep.tau("after") > 0.9
    table = format_report(rep)
    assert "held-out" in table and "m0" in table and "MAPE" in table
    changes = format_changes(result)
    for unit in ("GFLOP/s", "GB/s", " us", "peak f32", "memory bandwidth", "call overhead", "per dispatch",
                 "combination"):
        assert unit in changes
    png = plot(rep, tmp_path / "scatter.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


MANIFEST = {"tasks": [
    {"name": "g0", "kind": "compute", "module": "g0"},
    {"name": "alert", "kind": "tool", "tool": "notify"},
    {"name": "refine", "kind": "loop", "body": [{"name": "again", "kind": "tool", "tool": "notify"}]},
]}


def _trace(tmp_path: Path) -> Path:
    clock = FakeClock()
    tracer = Tracer(clock)
    for start, dur in ((0.0, 0.002), (0.01, 0.004)):
        tracer.slice("g0", "compute", start, dur, lane="g0")
    tracer.slice("alert", "tool", 0.02, 0.030, lane="tools")
    tracer.slice("again", "tool", 0.06, 0.050, lane="tools")
    tracer.instant("retry", lane="tools")
    return tracer.write(tmp_path / "trace.json")


def test_read_traces_maps_tools(tmp_path):
    times = read_traces([_trace(tmp_path)], MANIFEST)
    by = {t.task: t for t in times}
    assert by["g0"].kind == "compute" and by["g0"].median == pytest.approx(0.003)
    assert by["alert"].tool == "notify" and by["again"].tool == "notify"
    assert tool_latencies(times) == {"notify": pytest.approx(0.040)}
    assert tool_latencies([TaskTimes("x", "compute", (1.0,))]) == {}


@pytest.mark.parametrize("content, message", [
    (None, "does not exist"),
    ("{not json", "is not Chrome trace JSON"),
    ('{"traceEvents": 3}', "has no list of trace events"),
    ('{"traceEvents": [{"ph": "X", "name": "g0", "cat": "compute", "dur": -1}]}', "malformed slice"),
])
def test_bad_traces_are_named(tmp_path, content, message):
    path = tmp_path / "bad.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(TuneError, match=message) as err:
        read_traces([path], MANIFEST)
    assert str(path) in str(err.value)

