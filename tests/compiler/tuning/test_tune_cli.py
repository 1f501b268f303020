"""`planc tune` end to end: a wrong datasheet makes the merge split a chain across two "devices";
tuning on this host fixes the numbers and the recompiled plan merges it."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from planc.compiler.cli import main as planc
from planc.compiler.costs.deploy import task_facts
from planc.compiler.costs.model import RooflineModel
from planc.compiler.costs.profiles import load_profile
from planc.compiler.costs.tuned_model import TunedModel, load_tuning
from planc.compiler.ir.graph import GroupTask
from planc.compiler.tuning.tune import bundle_facts
from planc.runtime.bundle.loader import load_bundle
from planc.runtime.engine.runner import RunConfig, Runner
from planc.runtime.host.detect import detect, variant_problem

pytest.importorskip("iree.runtime")
pytest.importorskip("jax")

pytestmark = [pytest.mark.iree, pytest.mark.slow]

KINDS = ("x86_64-avx2", "x86_64-avx512")
PLAN = """plan chain {
  target x86_64-avx2, x86_64-avx512
  objective latency
  input x: f32[64, 128]
  model mm = jax "models.py:mm" weights "w.npz"
  model act = jax "models.py:act"
  tool log = python "tools.py:log"
  task a1 = mm(x)
  task b1 = act(a1)
  task a2 = mm(b1)
  task b2 = act(a2)
  task a3 = mm(b2)
  task b3 = act(a3)
  task logged = log(b3)
  output b3, logged
}
"""
MODELS = """import jax.numpy as jnp

def mm(params, x):
    return x @ params["w"]

def act(x):
    return jnp.maximum(x, 0.0) * 0.5 + x  # memory-bound: the wrong datasheet sends it to cpu1
"""
TOOLS = """def log(x, *, idempotency_key=None):
    return len(x)
"""
# cpu1's bandwidth typed 10x too high, dispatch called free, a free link: the merge DP puts
# every matmul on cpu0 and every activation on cpu1, so nothing merges.
WRONG = """schema = 1
[devices.x86_64-avx2]
mem_bandwidth_gbs = 512.0
dispatch_us = 0.0
[devices.x86_64-avx512]
dispatch_us = 0.0
[links.shared-memory]
bandwidth_gbs = 1000000.0
latency_us = 0.0
[deployments.two-cpus]
pue = 1.0
host = "cpu0"
devices = { cpu0 = "x86_64-avx512", cpu1 = "x86_64-avx2" }
links = [{ a = "cpu0", b = "cpu1", link = "shared-memory" }]
"""


def _runs_here() -> bool:
    host = detect()
    return all(variant_problem(k, {k: {}}, host) is None for k in KINDS)


pytestmark.append(pytest.mark.skipif(not _runs_here(),
                                     reason="needs a host that runs x86_64-avx2 and -avx512"))


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    from planc.compiler.bundle.build import BuildOptions, build_bundle

    d = tmp_path_factory.mktemp("tune")
    (d / "chain.plan").write_text(PLAN)
    (d / "models.py").write_text(MODELS)
    (d / "tools.py").write_text(TOOLS)
    (d / "wrong.toml").write_text(WRONG)
    np.savez(d / "w.npz", w=(np.random.default_rng(0).standard_normal((128, 128)) / 12).astype(np.float32))
    options = BuildOptions(deploy=str(d / "wrong.toml"), max_group=1, progress=None)  # six modules to fit
    before = build_bundle(d / "chain.plan", d / "chain.planb", options=options)
    runner = Runner(load_bundle(before.path), RunConfig(trace=True))
    x = {"x": np.random.default_rng(1).standard_normal((64, 128)).astype(np.float32)}
    for _ in range(3):
        result, _ = runner.run(x)
    result.tracer.write(d / "trace.json")
    runner.close()
    return d, before, x


def _tune(d: Path, capsys, *extra: str) -> tuple[int, str, str]:
    rc = planc(["tune", str(d / "chain.planb"), "--deploy", str(d / "wrong.toml"),
                "-o", str(d / "tuned.toml"),
                "--repeat", "5", "--warmup", "1", *extra])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_bundle_facts_are_the_merge_passes(scenario):
    d, before, _ = scenario
    facts = bundle_facts(before.manifest, d / "chain.planb")
    groups = {t.name: t for t in before.graph.walk() if isinstance(t, GroupTask)}
    assert set(facts) == set(groups)
    for name, g in groups.items():
        want = task_facts(g, [])
        assert facts[name].key == name
        got = (facts[name].flops, facts[name].bytes_accessed)
        assert got == pytest.approx((want.flops, want.bytes_accessed))


def test_tuning_fixes_a_wrong_datasheet(scenario, capsys):
    # Counted facts (fused traffic, weighted tanh) make even this datasheet merge the chain; what
    # the datasheet gets wrong is the time: free dispatch and a 10x bandwidth typo.
    d, before, x = scenario
    rc, out, err = _tune(d, capsys, "--trace", str(d / "trace.json"), "--plot", str(d / "scatter.png"))
    assert rc == 0, err
    for text in ("device kind x86_64-avx2", "device kind x86_64-avx512", "memory bandwidth", "GB/s",
                 "call overhead", "per dispatch", "combination", "local-task from", "MAPE", "Kendall", "logged",
                 "probe_add_16+"):
        assert text in out
    mape = re.search(r"MAPE\s+before ([0-9.]+) %, after ([0-9.]+) %", out)
    assert mape is not None and float(mape.group(1)) > 50 > float(mape.group(2)), out
    tuning = load_tuning(d / "tuned.toml")
    assert set(tuning.devices) == set(KINDS)
    assert tuning.devices["x86_64-avx2"].mem_bandwidth < 200e9  # the typo is gone
    fits = tuning.devices
    assert all(fits[k].dispatch_overhead + fits[k].per_dispatch > 2e-7 for k in KINDS), fits  # not free
    assert all(fits[k].local_task_flops > 0 and fits[k].blend > 0 for k in KINDS), fits
    assert set(tuning.compute) == {m.name for m in before.modules} and set(tuning.tools) == {"log"}
    assert (d / "scatter.png").read_bytes()[:4] == b"\x89PNG"

    from planc.compiler.bundle.build import BuildOptions, build_bundle

    after = build_bundle(d / "chain.plan", d / "tuned.planb",
                         options=BuildOptions(deploy=str(d / "wrong.toml"), tuned=str(d / "tuned.toml"),
                                              progress=None))
    assert after.manifest["cost_model"]["model"] == "tuned"
    ours = [Runner(load_bundle(b.path), RunConfig()) for b in (before, after)]
    outs = [r.run(x)[0].outputs["b3"] for r in ours]
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-5, atol=1e-5)
    for r in ours:
        r.close()


def test_module_times_apply_only_to_the_group_they_were_measured_for(scenario, capsys):
    d, before, _ = scenario
    rc, out, _ = _tune(d, capsys, "--no-probes", "--json")
    summary = json.loads(out)
    assert rc == 0 and set(summary["devices"]) == set(KINDS)
    assert summary["measurements"] == 2 * len(before.modules)
    assert summary["summary"]["mape_after"] < summary["summary"]["mape_before"]
    tuning = load_tuning(d / "tuned.toml")
    model = TunedModel(RooflineModel(load_profile(), str(d / "wrong.toml")), tuning)
    g = next(t for t in before.graph.walk() if isinstance(t, GroupTask) and t.name == "g0")
    kind = "x86_64-avx512" if g.device == "cpu0" else "x86_64-avx2"
    assert model.compute_time(task_facts(g, []), g.device) == tuning.compute["g0"][kind]
    bigger = task_facts(g, [])
    assert model.compute_time(replace(bigger, flops=bigger.flops * 3), g.device) != tuning.compute["g0"][kind]


def test_tune_errors_are_one_line(scenario, capsys, tmp_path):
    d, _, _ = scenario
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    cases = [
        (["tune", str(tmp_path / "none.planb"), "-o", str(tmp_path / "t.toml")], "does not exist"),
        (["tune", str(d / "chain.planb"), "-o", str(tmp_path / "t.toml"), "--trace", str(bad)],
         "is not Chrome trace JSON"),
        (["tune", str(d / "chain.planb"), "-o", str(tmp_path / "t.toml"), "--repeat", "0", "--no-probes"],
         "--repeat must be >= 1"),
        (["tune", str(d / "chain.planb"), "-o", str(tmp_path / "t.toml"), "--source", str(d / "models.py")],
         "is not the source"),
    ]
    for argv, message in cases:
        assert planc(argv) == 1
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
