"""`planrt run --engine ray` on a two-node loopback cluster with different CPU labels.

Placement follows the schedule and the node labels (each group on a node whose variant it
runs, checked from the trace), outputs match JAX, and when a node dies mid-run the run
either completes on the other node or fails clearly and resumes, never repeating a tool call.
"""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
from ray_helpers import (
    AVX2,
    AVX512,
    ISA_VARIANT,
    NODE_IPS,
    PLANRT,
    jax_outputs,
    ray_instants,
    ray_slices,
    saved_outputs,
    wait_for_line,
)

pytestmark = [pytest.mark.iree, pytest.mark.slow]


def _inputs(tmp_path, shape, seed=0):
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    return {"x": x}


def _close(got: dict, want: dict) -> None:
    assert set(got) == set(want)
    for name, value in want.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_allclose(got[name], value, rtol=1e-5, atol=1e-6, err_msg=name)
        else:  # a tool's JSON result: {"label", "sum" of its input, rounded}
            assert got[name] == pytest.approx(value, abs=2e-4), name


def test_groups_run_on_the_nodes_their_variants_need(ray_cluster, ray_bundles, tmp_path):
    ray_cluster.ensure("n0", AVX2)
    ray_cluster.ensure("n1", AVX512)
    built = ray_bundles["fanout"]
    inputs = _inputs(tmp_path, (128, 128))
    res = ray_cluster.planrt("run", str(built.path), "-i", f"x={tmp_path / 'x.npy'}", "--engine", "ray",
                             "--address", ray_cluster.address, "--run-dir", str(tmp_path / "runs"),
                             "--trace", str(tmp_path / "trace.json"), "--output-dir", str(tmp_path / "out"), "--json")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)  # Ray's own notices never mix into planrt's stdout
    schedule = next(iter(built.manifest["schedules"].values()))["placement"]
    groups = sorted(built.manifest["modules"])
    assert {schedule[g] for g in groups} == {"n0", "n1"}, "the schedule spreads the groups over both nodes"
    slices = {s["name"]: s["args"] for s in ray_slices(tmp_path / "trace.json")}
    assert sorted(slices) == groups
    for group, where in slices.items():
        assert where["node"] == schedule[group]
        assert where["variant"] == ISA_VARIANT[where["cpu_isa"]], f"{group} ran {where['variant']} on {where}"
        assert where["worker_host"] == (AVX2 if where["node"] == "n0" else AVX512)  # the node's own PLANRT_HOST
        assert summary["placement"][group] == {"node": where["node"], "cpu_isa": where["cpu_isa"], "device": "cpu",
                                               "variant": where["variant"]}
    assert {a["cpu_isa"] for a in slices.values()} == {"avx2", "avx512"}
    assert len({a["pid"] for a in slices.values()}) == 2, "one actor per node, reused by its groups"
    _close(saved_outputs(tmp_path / "out"), jax_outputs(built, inputs))


def _crash_env(tmp_path) -> dict[str, str]:
    return {"INVOCATIONS": str(tmp_path / "invocations.jsonl"), "OUTBOX": str(tmp_path / "outbox.jsonl"),
            "RECORD_SLEEP": "1.0"}


def _run_and_kill(cluster, built, tmp_path, victim: str) -> subprocess.CompletedProcess:
    """Starts the crash plan on the cluster and kills `victim` while the first tool call runs."""
    env = _crash_env(tmp_path)
    proc = subprocess.Popen([*PLANRT, "run", str(built.path), "-i", f"x={tmp_path / 'x.npy'}", "--engine", "ray",
                             "--address", cluster.address, "--run-dir", str(tmp_path / "runs"), "--run-id", "r",
                             "--trace", str(tmp_path / "trace.json"), "--output-dir", str(tmp_path / "out")],
                            env={**cluster.env, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_line(tmp_path / "invocations.jsonl")  # r1 started: g0 finished on the victim
        cluster.kill(victim)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _tool_calls(tmp_path) -> tuple[list[str], list[str]]:
    lines = lambda f: [json.loads(x)["key"] for x in (tmp_path / f).read_text().splitlines() if x.strip()]
    return lines("invocations.jsonl"), lines("outbox.jsonl")


def test_a_node_dies_mid_run_and_its_groups_move(ray_cluster, ray_bundles, tmp_path):
    ray_cluster.ensure("n0", AVX2)
    ray_cluster.ensure("n1", AVX512)
    built = ray_bundles["crash"]  # AVX2 and AVX-512 variants; scheduled for an AVX-512 device: n1
    inputs = _inputs(tmp_path, (4, 8))
    res = _run_and_kill(ray_cluster, built, tmp_path, "n1")
    assert res.returncode == 0, res.stderr
    assert "node 'n1' lost" in res.stderr
    calls, sent = _tool_calls(tmp_path)
    assert calls == sent == ["r:r1", "r:r2", "r:r3"], "every tool call made once"
    ran = [(s["name"], s["args"]["node"], s["args"]["variant"]) for s in ray_slices(tmp_path / "trace.json")]
    assert ran == [("g0", "n1", "x86_64-avx512"), ("g1", "n0", "x86_64-avx2"), ("g2", "n0", "x86_64-avx2")]
    assert [i["args"]["node"] for i in ray_instants(tmp_path / "trace.json")] == ["n1"]
    want = jax_outputs(built, inputs, tool_env={**ray_cluster.env, "INVOCATIONS": str(tmp_path / "ref-inv"),
                                                 "OUTBOX": str(tmp_path / "ref-outbox"), "RECORD_SLEEP": "0"})
    got = saved_outputs(tmp_path / "out")
    _close(got, want)


def test_no_capable_node_left_fails_clearly_then_resumes(ray_cluster, ray_bundles, tmp_path):
    ray_cluster.ensure("n0", AVX2)
    ray_cluster.ensure("n1", AVX512)
    built = ray_bundles["crash512"]  # only an AVX-512 variant: n1 is the one node that runs it
    inputs = _inputs(tmp_path, (4, 8))
    res = _run_and_kill(ray_cluster, built, tmp_path, "n1")
    assert res.returncode == 1
    err = res.stderr
    assert "task 'g1' failed: node 'n1' was lost" in res.stdout
    assert "no node can run group 'g1': it needs one of: x86_64-avx512 (x86_64 cpu-isa=avx512)" in res.stdout
    assert f"n0 ({NODE_IPS['n0']}): x86_64 cpu-isa=avx2" in res.stdout
    assert "Traceback" not in err
    run_dir = tmp_path / "runs" / "r"
    started = json.loads((run_dir / "journal.jsonl").read_text().splitlines()[0])
    assert started["type"] == "run_started" and started["engine"]["engine"] == "ray"

    ray_cluster.start("n1", AVX512)  # a capable node is back
    env = _crash_env(tmp_path)
    res = ray_cluster.planrt("resume", str(run_dir), "--trace", str(tmp_path / "resume.json"),
                             "--output-dir", str(tmp_path / "out"), env=env)  # the engine comes from the run
    assert res.returncode == 0, res.stderr
    calls, sent = _tool_calls(tmp_path)
    assert calls == sent == ["r:r1", "r:r2", "r:r3"], "r1 finished before the crash and is not called again"
    assert [s["name"] for s in ray_slices(tmp_path / "resume.json")] == ["g1", "g2"], "g0 is not recomputed"
    want = jax_outputs(built, inputs, tool_env={**ray_cluster.env, "INVOCATIONS": str(tmp_path / "ref-inv"),
                                                 "OUTBOX": str(tmp_path / "ref-outbox"), "RECORD_SLEEP": "0"})
    got = saved_outputs(tmp_path / "out")
    _close(got, want)


def test_no_node_can_run_a_group(ray_cluster, ray_bundles, tmp_path):
    ray_cluster.ensure("n0", AVX2)
    built = ray_bundles["neon"]
    _inputs(tmp_path, (128, 128))
    res = ray_cluster.planrt("run", str(built.path), "-i", f"x={tmp_path / 'x.npy'}", "--engine", "ray",
                             "--address", ray_cluster.address, "--no-journal")
    assert res.returncode == 1
    assert "planrt: error: no node can run group 'g0': it needs one of: aarch64-neon (aarch64 cpu-isa=neon)" \
        in res.stderr
    assert f"n0 ({NODE_IPS['n0']}): x86_64 cpu-isa=avx2" in res.stderr
    assert "Traceback" not in res.stderr


def test_tune_measures_the_cluster_for_the_compiler(ray_cluster, tmp_path):
    from planc.compiler.costs.profiles import load_profile

    ray_cluster.ensure("n0", AVX2)
    ray_cluster.ensure("n1", AVX512)
    out = tmp_path / "cluster.toml"
    res = ray_cluster.planrt("node", "tune", "--address", ray_cluster.address, "-o", str(out), "--calls", "50")
    assert res.returncode == 0, res.stderr
    dep = load_profile().deployment(str(out))
    assert {d.name: d.kind for d in dep.devices} == {"n0": "x86_64-avx2", "n1": "x86_64-avx512"}
    assert dep.host == "n0"
    shipped = load_profile().devices["x86_64-avx2"].dispatch_overhead
    for d in dep.devices:  # a Ray round trip: far more than the local IREE dispatch it replaces
        assert d.spec.dispatch_overhead > 10 * shipped
    (link,) = dep.route("n0", "n1")
    assert link.latency > 0 and link.bandwidth > 0
