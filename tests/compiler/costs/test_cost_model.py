"""The roofline cost model, merged facts, transfers, energy, and the tuned-model seam."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from planc.compiler.costs.model import (
    DTYPES,
    BatchCostModel,
    ComputeFacts,
    CostModel,
    RooflineModel,
    merge_facts,
)
from planc.compiler.costs.profiles import ProfileError, load_profile
from planc.compiler.costs.tuned_model import TunedModel, Tuning, load_tuning
from planc.dsl.ast import DType


@pytest.fixture(scope="module")
def edge():
    return RooflineModel(load_profile(), "edge-x86-gpu")


@pytest.fixture(scope="module")
def server():
    return RooflineModel(load_profile(), "server-2gpu")


# The numbers below are devices.toml's, by hand: Ryzen 7 5800X f32 972.8 GFLOP/s,
# 51.2 GB/s, 10 us dispatch; A100 PCIe f32 19.5 TFLOP/s, f16 312 TFLOP/s, i8 624 TOPS,
# 1935 GB/s, 8 us; PCIe 4.0 x16 25 GB/s, 10 us; H100 SXM 700 W; server PUE 1.58.

def test_compute_bound_on_the_cpu(edge):
    facts = ComputeFacts(flops=2e12, bytes_accessed=1e6, dtype="f32")
    assert edge.compute_time(facts, "cpu0") == pytest.approx(10e-6 + 2e12 / 972.8e9)


def test_memory_bound_on_the_gpu(edge):
    facts = ComputeFacts(flops=1e6, bytes_accessed=4e9, dtype="f32")
    assert edge.compute_time(facts, "gpu0") == pytest.approx(8e-6 + 4e9 / 1935e9)


def test_dtype_picks_the_peak_and_dispatches_multiply(edge):
    f16 = ComputeFacts(flops=3.12e12, bytes_accessed=0.0, dtype="f16", dispatches=3)
    assert edge.compute_time(f16, "gpu0") == pytest.approx(3 * 8e-6 + 3.12e12 / 312e12)
    i8 = ComputeFacts(flops=6.24e12, bytes_accessed=0.0, dtype=DType.I8)
    assert i8.dtype == "i8"
    assert edge.compute_time(i8, "gpu0") == pytest.approx(8e-6 + 6.24e12 / 624e12)
    i32 = ComputeFacts(flops=1.95e12, bytes_accessed=0.0, dtype="i32")  # falls back to the f32 rate
    assert edge.compute_time(i32, "gpu0") == pytest.approx(8e-6 + 1.95e12 / 19.5e12)


def test_transfers(edge, server):
    assert edge.transfer_time(1e9, "gpu0", "gpu0") == 0.0
    assert edge.transfer_time(1e9, "cpu0", "gpu0") == pytest.approx(10e-6 + 1e9 / 25e9)
    assert edge.transfer_time(1e9, "gpu0", "cpu0") == edge.transfer_time(1e9, "cpu0", "gpu0")
    assert edge.transfer_time(0, "cpu0", "gpu0") == pytest.approx(10e-6)  # a cross-device sync still waits
    assert server.transfer_time(4.5e9, "gpu0", "gpu1") == pytest.approx(3e-6 + 4.5e9 / 450e9)
    with pytest.raises(ValueError, match=">= 0"):
        edge.transfer_time(-1, "cpu0", "gpu0")
    with pytest.raises(ProfileError, match="no device 'gpu1', did you mean 'gpu0'"):
        edge.transfer_time(1, "cpu0", "gpu1")


def test_multi_hop_transfer_sums_the_hops(tmp_path):
    path = tmp_path / "two.toml"
    path.write_text('schema = 1\n[deployments.two]\npue = 1\nhost = "a"\n'
                    'devices = { a = "x86_64-avx2", g = "cuda-sm80", b = "aarch64-neon" }\n'
                    'links = [{ a = "a", b = "g", link = "pcie4-x16" }, { a = "a", b = "b", link = "eth-1g" }]\n')
    model = RooflineModel(load_profile(), str(path))
    assert model.transfer_time(1e6, "g", "b") == pytest.approx((10e-6 + 1e6 / 25e9) + (100e-6 + 1e6 / 0.125e9))


def test_energy_is_power_times_time_times_pue(edge, server):
    assert server.energy(2.0, "gpu1") == pytest.approx(700 * 2.0 * 1.58)
    assert server.idle_energy(2.0, "cpu0") == pytest.approx(70 * 2.0 * 1.58)
    assert edge.energy(0.5, "cpu0") == pytest.approx(105 * 0.5 * 1.0)


def test_tool_time(edge):
    assert edge.tool_time(None) == pytest.approx(0.1)  # devices.toml [defaults] tool_time_ms
    assert edge.tool_time(0.25, key="notify") == 0.25
    with pytest.raises(ValueError, match="declared tool time"):
        edge.tool_time(-1.0)


def test_protocols_and_describe(edge):
    assert isinstance(edge, CostModel) and isinstance(edge, BatchCostModel)
    tuned = TunedModel(edge, Tuning())
    assert isinstance(tuned, CostModel) and isinstance(tuned, BatchCostModel)
    info = edge.describe()
    assert info["deployment"] == "edge-x86-gpu" and info["profiles"] == ["devices.toml"]
    assert info["devices"] == {"cpu0": "x86_64-avx2", "gpu0": "cuda-sm80"}
    assert "/" not in repr(info)


@pytest.mark.parametrize("kwargs, match", [
    ({"flops": -1.0, "bytes_accessed": 0.0, "dtype": "f32"}, "flops must be"),
    ({"flops": 1.0, "bytes_accessed": math.inf, "dtype": "f32"}, "bytes_accessed must be"),
    ({"flops": 1.0, "bytes_accessed": 0.0, "dtype": "f64"}, "expected one of: f32, f16, bf16, i8"),
    ({"flops": 1.0, "bytes_accessed": 0.0, "dtype": "f32", "dispatches": -1}, "dispatches"),
    ({"flops": 1.0, "bytes_accessed": 0.0, "dtype": "f32", "mix": (("f32", 2.0),)}, "mix sums to"),
])
def test_facts_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ComputeFacts(**kwargs)


def test_merge_facts():
    a = ComputeFacts(1e9, 4e6, "f32", dispatches=2, key="a")
    b = ComputeFacts(3e9, 2e6, "f32")
    assert merge_facts([a]) is a
    m = merge_facts([a, b], 1e6)
    assert (m.flops, m.bytes_accessed, m.dtype, m.dispatches, m.mix) == (4e9, 5e6, "f32", 1, ())
    assert merge_facts([a, b], 1e9).bytes_accessed == 0.0  # never below zero
    mixed = merge_facts([a, ComputeFacts(5e9, 0.0, "i8")], key="g")
    assert mixed.dtype == "i8" and mixed.mix == (("f32", 1e9), ("i8", 5e9)) and mixed.key == "g"
    with pytest.raises(ValueError, match="at least one"):
        merge_facts([])
    with pytest.raises(ValueError, match="internal_bytes"):
        merge_facts([a], -1.0)


def test_mixed_dtypes_price_each_part_at_its_own_peak(edge):
    mixed = merge_facts([ComputeFacts(1.95e12, 0.0, "f32"), ComputeFacts(6.24e12, 0.0, "i8")])
    assert edge.compute_time(mixed, "gpu0") == pytest.approx(8e-6 + 1.95e12 / 19.5e12 + 6.24e12 / 624e12)


facts_st = st.builds(
    ComputeFacts,
    flops=st.floats(0, 1e13), bytes_accessed=st.floats(0, 1e10),
    dtype=st.sampled_from(["f32", "f16", "bf16", "i8", "i32"]), dispatches=st.integers(1, 3),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(facts_st, min_size=2, max_size=5), st.floats(0, 1), st.sampled_from(["cpu0", "gpu0"]))
def test_merging_on_one_device_never_costs_more(members, share, device):
    model = RooflineModel(load_profile(), "edge-x86-gpu")
    separate = sum(model.compute_time(f, device) for f in members)
    internal = share * sum(f.bytes_accessed for f in members)
    merged = model.compute_time(merge_facts(members, internal), device)
    assert 0 <= merged <= separate * (1 + 1e-12)


@settings(max_examples=40, deadline=None)
@given(st.lists(facts_st, min_size=1, max_size=6), st.sampled_from(["cpu0", "gpu0"]))
def test_batch_times_equal_scalar_times(rows, device):
    model = RooflineModel(load_profile(), "edge-x86-gpu")
    dtypes = list(DTYPES[:5])
    flops = np.zeros((len(rows), len(dtypes)))
    for i, f in enumerate(rows):
        flops[i, dtypes.index(f.dtype)] = f.flops
    nbytes = np.array([f.bytes_accessed for f in rows])
    batch = model.compute_times(flops, nbytes, dtypes, device)
    scalar = [model.compute_time(ComputeFacts(f.flops, f.bytes_accessed, f.dtype), device) for f in rows]
    assert np.allclose(batch, scalar, rtol=1e-12, atol=0)


TUNING = """schema = 1
[scale]
x86_64-avx2 = 1.5
gpu0 = 2.0
[tools]
notify = 0.35
[compute."detector"]
cuda-sm80 = 0.004
"""


def test_tuned_model(edge, tmp_path):
    path = tmp_path / "tuned.toml"
    path.write_text(TUNING)
    tuned = TunedModel(edge, load_tuning(path))
    plain = ComputeFacts(1e12, 1e6, "f32")
    assert tuned.compute_time(plain, "cpu0") == pytest.approx(1.5 * edge.compute_time(plain, "cpu0"))
    assert tuned.compute_time(plain, "gpu0") == pytest.approx(2.0 * edge.compute_time(plain, "gpu0"))
    keyed = ComputeFacts(1e12, 1e6, "f32", key="detector")
    assert tuned.compute_time(keyed, "gpu0") == 0.004  # measured, no scale
    assert tuned.compute_time(keyed, "cpu0") == pytest.approx(1.5 * edge.compute_time(keyed, "cpu0"))
    assert tuned.tool_time(0.1, key="notify") == 0.35 and tuned.tool_time(None, key="other") == 0.1
    assert tuned.transfer_time(1e6, "cpu0", "gpu0") == edge.transfer_time(1e6, "cpu0", "gpu0")
    assert tuned.energy(1.0, "gpu0") == edge.energy(1.0, "gpu0")
    batch = tuned.compute_times(np.array([[1e12]]), np.array([1e6]), ["f32"], "cpu0")
    assert batch[0] == pytest.approx(tuned.compute_time(plain, "cpu0"))
    assert tuned.describe() == {"model": "tuned", "tuning": "tuned.toml", "base": edge.describe()}


def test_tuning_round_trips(tmp_path):
    tuning = load_tuning(_write(tmp_path, TUNING))
    again = load_tuning(_write(tmp_path, tuning.to_toml(), "again.toml"))
    assert dict(again.scale) == dict(tuning.scale) and dict(again.tools) == dict(tuning.tools)
    assert {k: dict(v) for k, v in again.compute.items()} == {"detector": {"cuda-sm80": 0.004}}


@pytest.mark.parametrize("text, key", [
    ("schema = 3\n", "schema"),
    ("[scale]\na = 1\n", "schema"),
    ("schema = 1\n[scale]\nx = -2\n", "scale.x"),
    ("schema = 1\n[tools]\nx = \"slow\"\n", "tools.x"),
    ("schema = 1\nextra = 1\n", "extra"),
    ("schema = 1\ncompute = 3\n", "compute"),
])
def test_tuning_errors(tmp_path, text, key):
    with pytest.raises(ProfileError) as err:
        load_tuning(_write(tmp_path, text))
    assert err.value.key == key


def _write(tmp_path: Path, text: str, name: str = "t.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path
