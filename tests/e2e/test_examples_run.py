"""Every example plan compiles to a bundle, runs with planrt on this host and matches JAX."""

from __future__ import annotations

import numpy as np
import pytest
from e2e_support import EXAMPLES, PLANS, example_inputs, mlir_references
from planc.compiler.codegen.reference import jax_compute
from planc.runtime.bundle.loader import load_bundle
from planc.runtime.engine.executor import RunStatus
from planc.runtime.engine.runner import InputError, RunConfig, Runner

pytestmark = pytest.mark.iree


def _run(bundle, inputs, **config):
    runner = Runner(bundle, RunConfig(**config))
    try:
        result, run_dir = runner.run(inputs)
        if run_dir is not None:
            run_dir.close()
        return result, runner
    finally:
        runner.close()


@pytest.mark.parametrize("file,plan", PLANS, ids=[p for _, p in PLANS])
def test_example_matches_jax(bundles, file, plan, tool_env, tmp_path):
    built = bundles[plan]
    bundle = load_bundle(built.path)
    inputs = example_inputs(bundle.manifest)
    ours, runner = _run(bundle, inputs, run_root=tmp_path / "runs", tool_env=tool_env)
    assert ours.status is not RunStatus.FAILED, ours.error
    assert set(runner.variants.values()) <= {"x86_64-avx512", "x86_64-avx2", "aarch64-neon", "vmvx"}
    ref_compute = jax_compute(built.graph, mlir_references(EXAMPLES / file))
    tool_env = {**tool_env, "PLANC_OUTBOX": str(tmp_path / "ref-outbox.jsonl")}
    expected, _ = _run(bundle, inputs, compute=ref_compute, tool_env=tool_env)
    assert expected.status is ours.status
    assert ours.iterations == expected.iterations
    for name, value in expected.outputs.items():
        got = ours.outputs[name]
        if isinstance(value, np.ndarray):
            assert got.dtype == value.dtype and got.shape == value.shape, name
            np.testing.assert_allclose(got, value, rtol=1e-5, atol=1e-6, err_msg=name)
        elif name != "reply":  # the reply carries the run's own idempotency key
            assert got == value, name


def test_defects_runs_every_task_kind(bundles, tool_env, tmp_path):
    bundle = load_bundle(bundles["defects"].path)
    frame = np.ones((1, 64, 64, 3), np.float32)
    result, _ = _run(bundle, {"frame": frame}, run_root=tmp_path, tool_env=tool_env)
    assert result.status is RunStatus.COMPLETED
    assert result.outputs["alert"] == {"sent": True}
    log = (tmp_path / "notify.log").read_text().strip().splitlines()
    assert len(log) == 1 and '"args"' in log[0]


def test_bad_inputs_are_named(bundles):
    bundle = load_bundle(bundles["defects"].path)
    runner = Runner(bundle, RunConfig())
    try:
        with pytest.raises(InputError, match="missing input 'frame'"):
            runner.run({})
        with pytest.raises(InputError, match=r"input 'frame' has shape \[2\]"):
            runner.run({"frame": np.zeros(2, np.float32)})
        with pytest.raises(InputError, match="unknown input"):
            runner.run({"frame": np.zeros((1, 64, 64, 3), np.float32), "extra": np.zeros(1)})
    finally:
        runner.close()


def test_no_variant_for_this_host_is_a_clear_error(bundles, monkeypatch):
    from planc.runtime.host.detect import NoVariantError

    monkeypatch.setenv("PLANRT_HOST", "riscv64:")
    bundle = load_bundle(bundles["vib_screen"].path)
    with pytest.raises(NoVariantError) as e:
        Runner(bundle, RunConfig())
    msg = str(e.value)
    assert "x86_64-avx2" in msg and "aarch64-neon" in msg and "riscv64" in msg


def test_rejected_gate_skips_dependents(bundles, tool_env, tmp_path):
    from planc.runtime.gates.keeper import DecisionsDir

    bundle = load_bundle(bundles["triage"].path)
    inputs = example_inputs(bundle.manifest)
    inputs["urgency"] = np.float32(2.5)  # forces the review gate
    decisions = tmp_path / "decisions"
    decisions.mkdir()
    (decisions / "review.json").write_text('{"decision": "reject", "by": "test"}')
    result, _ = _run(bundle, inputs, run_root=tmp_path / "runs", gates=DecisionsDir(decisions), tool_env=tool_env)
    assert result.status is RunStatus.REJECTED and result.rejected_by == "review"
    assert result.outputs["reply"] is None  # needs the gate: skipped
    assert result.outputs["revised"] is not None


def test_module_refusing_its_arguments_is_a_named_error(bundles, tmp_path, capsys):
    # Found by scripts/soak.py: a consistently re-hashed manifest declaring another input shape than the
    # module's made IREE raise ValueError at invoke, and `planrt run` ended in an internal error.
    from planc.compiler.bundle.writer import write_bundle
    from planc.runtime.cli import main

    bundle = load_bundle(bundles["vib_screen"].path)
    manifest = {k: v for k, v in bundle.manifest.items() if k != "members"}
    manifest["inputs"] = [{**manifest["inputs"][0], "shape": [8 * 128]}]
    forged = tmp_path / "forged.planb"
    write_bundle(forged, manifest, {m: bundle.read(m) for m in bundle.members})
    np.save(tmp_path / "v.npy", np.zeros(8 * 128, np.float32))
    rc = main(["run", str(forged), "-i", f"vibration={tmp_path / 'v.npy'}", "--no-journal"])
    err = capsys.readouterr().err
    assert rc == 1 and "planrt: error: module" in err and "failed on driver" in err, err
