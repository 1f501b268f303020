"""The embedding API: planc.runtime.load once, Plan.run many times from many threads, typed results."""

from __future__ import annotations

import threading

import numpy as np
import planc.runtime
import pytest
from e2e_support import example_inputs
from planc.runtime.api import IdempotencyConflict, OutputKind, load
from planc.runtime.api.gates import GateBoard
from planc.runtime.engine.executor import RunStatus
from planc.runtime.engine.runner import InputError

pytestmark = pytest.mark.iree


def test_load_and_run_gives_typed_results(bundles, monkeypatch, tmp_path):
    monkeypatch.setenv("PLANC_NOTIFY_LOG", str(tmp_path / "notify.log"))
    with planc.runtime.load(bundles["defects"].path) as plan:
        assert plan.name == "defects" and len(plan.sha256) == 64
        assert [(s.name, s.dtype, s.shape) for s in plan.inputs] == [("frame", "f32", (1, 64, 64, 3))]
        assert [(s.name, s.describe()) for s in plan.outputs] == [("label", "f32[1, 4]"), ("worst", "f32[]"),
                                                                  ("alert", "json")]
        result = plan.run(frame=np.ones((1, 64, 64, 3), np.float32))
        assert result.ok and result.status is RunStatus.COMPLETED and result.model_version == plan.sha256
        assert result.outputs["label"].kind is OutputKind.TENSOR and result["label"].shape == (1, 4)
        assert result["label"].dtype == np.float32 and result["worst"].shape == ()
        assert result.outputs["alert"].kind is OutputKind.JSON and result["alert"] == {"sent": True}
        again = plan.run({"frame": np.ones((1, 64, 64, 3), np.float32)})  # a mapping works too
        np.testing.assert_array_equal(again["label"], result["label"])
        with pytest.raises(InputError, match=r"input 'frame' has shape \[2\]"):
            plan.run(frame=np.zeros(2, np.float32))
        with pytest.raises(InputError, match="missing input 'frame'"):
            plan.run()
        with pytest.raises(KeyError, match="no output 'nope'"):
            result["nope"]


def test_runs_from_many_threads_at_once_are_each_correct(bundles):
    with load(bundles["sensors"].path, concurrency=8) as plan:
        inputs = [example_inputs(plan.manifest, seed) for seed in range(24)]
        alone = [plan.run(i) for i in inputs]
        together: list = [None] * len(inputs)
        start = threading.Barrier(8)

        def work(k: int) -> None:
            start.wait()
            for j in range(k, len(inputs), 8):
                together[j] = plan.run(inputs[j])

        threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for a, b in zip(alone, together):
            for name in a.outputs:
                np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_idempotency_key_replays_also_in_a_new_process_state(bundles, monkeypatch, tmp_path):
    log = tmp_path / "notify.log"
    monkeypatch.setenv("PLANC_NOTIFY_LOG", str(log))
    frame = np.ones((1, 64, 64, 3), np.float32)
    with load(bundles["defects"].path, state_dir=tmp_path / "state") as plan:
        first = plan.run(frame=frame, idempotency_key="frame-0001")
        again = plan.run(frame=frame, idempotency_key="frame-0001")
        assert not first.replayed and again.replayed and first.run_id == again.run_id
        with pytest.raises(IdempotencyConflict, match="input 'frame'"):
            plan.run(frame=frame * 2, idempotency_key="frame-0001")
        with pytest.raises(InputError, match="bad idempotency key"):
            plan.run(frame=frame, idempotency_key="has space")
    with load(bundles["defects"].path, state_dir=tmp_path / "state") as plan:  # as after a restart
        later = plan.run(frame=frame, idempotency_key="frame-0001")
    assert later.replayed and later["alert"] == first["alert"]
    np.testing.assert_array_equal(later["label"], first["label"])
    assert len(log.read_text().splitlines()) == 1  # one side effect in all
    with load(bundles["defects"].path) as plan, pytest.raises(InputError, match="needs a state directory"):
        plan.run(frame=frame, idempotency_key="k")


def test_gates_decided_by_the_application(bundles, tmp_path):
    board = GateBoard()
    with load(bundles["triage"].path, gates=board, state_dir=tmp_path) as plan:
        inputs = example_inputs(plan.manifest)
        inputs["urgency"] = np.float32(2.5)  # the review gate asks
        out: list = []
        t = threading.Thread(target=lambda: out.append(plan.run(inputs)))
        t.start()
        while not board.pending():
            t.join(0.01)
        p = board.pending()[0]
        assert p.gate == "review" and p.model == "triage"
        board.decide(p.id, "reject", "ann")
        t.join()
        assert out[0].status is RunStatus.REJECTED and out[0].rejected_by == "review"
        assert out[0].outputs["reply"].skipped and out[0]["reply"] is None  # needs the gate
        # Without a reviewer every gate takes its default at once (review: approve).
    with load(bundles["triage"].path, state_dir=tmp_path / "b") as plan:
        done = plan.run(inputs)
        assert done.status is RunStatus.COMPLETED and done.outputs["reply"].kind is OutputKind.JSON
        assert done.outputs["page"].skipped and "page" in done.skipped  # urgency <= 3: not paged
        assert '"default (no reviewer configured)"' in plan.audit_path.read_text()
