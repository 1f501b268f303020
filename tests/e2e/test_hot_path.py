"""The run path without journal or trace: direct IREE invokes, result lists handed on, nothing per run."""

from __future__ import annotations

import tempfile
import textwrap
import threading

import numpy as np
import pytest
from e2e_support import PLANS, example_inputs
from planc.compiler.bundle.build import BuildOptions, build_bundle
from planc.runtime.bundle.loader import load_bundle
from planc.runtime.engine.executor import RunStatus
from planc.runtime.engine.runner import RunConfig, Runner

pytestmark = pytest.mark.iree

PLAN = """\
plan chain {
  target x86_64-avx2, x86_64-avx512
  input x: f32[16]
  input flag: f32[]
  model step = jax "m.py:step"
  task a = step(x)
  task b = step(a)
  task c = step(b)
  task d = step(c) when flag > 0
  task e = step(d)
  output a, c, e
}
"""


def _step(x: np.ndarray) -> np.ndarray:
    return x * np.float32(0.5) + np.float32(1.0)


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    d = tmp_path_factory.mktemp("chain")
    (d / "m.py").write_text("def step(x):\n    return x * 0.5 + 1.0\n")
    (d / "p.plan").write_text(textwrap.dedent(PLAN))
    res = build_bundle(d / "p.plan", d / "p.planb", options=BuildOptions(progress=None, max_group=1))
    assert len(res.manifest["modules"]) == 5, "the test needs one module per task"
    return load_bundle(res.path)


def _expect(x: np.ndarray, flag: float) -> dict:
    a = _step(x)
    c = _step(_step(a))
    return {"a": a, "c": c, "e": _step(_step(c)) if flag > 0 else None}


def _check(outputs: dict, want: dict) -> None:
    for name, w in want.items():
        if w is None:
            assert outputs[name] is None, name
        else:
            np.testing.assert_allclose(outputs[name], w, rtol=1e-6, err_msg=name)


def test_chained_modules_hand_on_result_lists(chain):
    runner = Runner(chain, RunConfig())
    try:
        steps = runner._programs.get(chain.records.tasks).order
        assert [s.chain for s in steps] == [False, True, True, True, True]
        x = np.linspace(-2, 2, 16, dtype=np.float32)
        for flag in (1.0, -1.0):
            result, run_dir = runner.run({"x": x, "flag": np.float32(flag)})
            assert run_dir is None and result.status is RunStatus.COMPLETED
            _check(result.outputs, _expect(x, flag))
            assert set(result.skipped) == ({"g3", "g4"} if flag < 0 else set())
            assert set(result.task_seconds) == {s.name for s in steps} - set(result.skipped)
    finally:
        runner.close()


def test_direct_path_equals_journaled_and_traced(chain, tmp_path):
    x = np.linspace(-1, 3, 16, dtype=np.float32)
    for flag in (1.0, -1.0):
        inputs = {"x": x, "flag": np.float32(flag)}
        results = []
        for config in (RunConfig(), RunConfig(run_root=tmp_path / str(flag)), RunConfig(trace=True)):
            runner = Runner(chain, config)
            try:
                result, run_dir = runner.run(inputs)
                if run_dir is not None:
                    run_dir.close()
                results.append(result)
            finally:
                runner.close()
        for r in results:
            _check(r.outputs, _expect(x, flag))
            assert r.skipped == results[0].skipped
        assert len(results[2].tracer.slices) == 5 - len(results[2].skipped)


def test_concurrent_runs_share_one_runner(chain):
    runner = Runner(chain, RunConfig())
    errors: list[BaseException] = []

    def worker(seed: int) -> None:
        rng = np.random.default_rng(seed)
        try:
            for _ in range(30):
                x = rng.standard_normal(16).astype(np.float32)
                flag = float(rng.choice([-1.0, 1.0]))
                result, _ = runner.run({"x": x, "flag": np.float32(flag)})
                _check(result.outputs, _expect(x, flag))
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)

    try:
        threads = [threading.Thread(target=worker, args=(s,)) for s in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors[0]
    finally:
        runner.close()


def test_runs_without_journal_make_no_files_and_start_nothing(bundles, chain, tool_env, tmp_path, monkeypatch):
    """Everything is prepared at load: a run (a tool skipped by its guard, a gate passed) adds
    no file, no thread and no pool."""
    defects = load_bundle(bundles["defects"].path)
    mean = np.array([0.485, 0.456, 0.406], np.float32)
    cases = [(Runner(defects, RunConfig(tool_env=tool_env)), {"frame": np.broadcast_to(mean, (1, 64, 64, 3)).copy()}),
             (Runner(chain, RunConfig()), {"x": np.zeros(16, np.float32), "flag": np.float32(1)})]
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    threads = threading.active_count()
    try:
        for runner, inputs in cases:
            for _ in range(3):
                result, _ = runner.run(inputs)
                assert result.status is RunStatus.COMPLETED
            assert runner._shared.pool is None and not getattr(runner._shared_tools, "_live", ())
        assert cases[0][0].run(cases[0][1])[0].outputs["alert"] is None
        assert list(scratch.iterdir()) == [] and threading.active_count() == threads
    finally:
        for runner, _ in cases:
            runner.close()


@pytest.mark.parametrize("file,plan", PLANS, ids=[p for _, p in PLANS])
def test_every_example_direct_equals_journaled(bundles, file, plan, tool_env, tmp_path):
    bundle = load_bundle(bundles[plan].path)
    inputs = example_inputs(bundle.manifest, seed=3)
    results = []
    for root in (None, tmp_path / "runs"):
        env = {**tool_env, "PLANC_OUTBOX": str(tmp_path / f"outbox-{root is None}.jsonl")}
        runner = Runner(bundle, RunConfig(run_root=root, tool_env=env))
        try:
            result, run_dir = runner.run(inputs)
            if run_dir is not None:
                run_dir.close()
            results.append(result)
        finally:
            runner.close()
    direct, journaled = results
    assert direct.status is journaled.status and direct.iterations == journaled.iterations
    assert sorted(direct.skipped) == sorted(journaled.skipped)
    for name, value in journaled.outputs.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(direct.outputs[name], value, err_msg=name)
        elif name != "reply":  # the reply carries the run's own idempotency key
            assert direct.outputs[name] == value, name


def test_a_tool_that_runs_hands_over_to_the_dataflow_loop(bundles, tool_env, tmp_path):
    runner = Runner(load_bundle(bundles["defects"].path), RunConfig(tool_env=tool_env))
    try:
        result, _ = runner.run({"frame": np.ones((1, 64, 64, 3), np.float32)})
        assert result.status is RunStatus.COMPLETED and result.outputs["alert"] == {"sent": True}
        assert "alert" in result.task_seconds
    finally:
        runner.close()
