"""Run directories: durable records, replay after crashes (torn tails), corruption, values, the lock."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from planc.runtime.journal.clock import FakeClock
from planc.runtime.journal.rundir import (
    JOURNAL,
    Journal,
    JournalCorrupt,
    JournalError,
    RunDir,
    RunLocked,
    TaskStatus,
    value_sha256,
)

BUNDLE = "ab" * 32
FRAME = np.linspace(0, 1, 12, dtype=np.float32).reshape(1, 2, 2, 3)


def populate(run: RunDir) -> None:
    """A small run: compute, a tool call (completed), one in flight, a gate, a loop, a skip."""
    run.record_task_finished("pre", {"pre": FRAME * 2, "pre.1": np.int32(7)})
    run.record_tool_intent("r:alert", task="alert", tool="notify", attempt=1)
    run.record_tool_failed("r:alert", attempt=1, error="tool 'notify': timed out")
    run.record_tool_intent("r:alert", task="alert", tool="notify", attempt=2)
    run.record_tool_completed("r:alert", {"sent": True})
    run.record_task_finished("alert", {"alert": {"sent": True}})
    run.record_tool_intent("r:send:1", task="send", tool="send", attempt=1, iteration=1)
    run.record_gate_decided(
        "review",
        decision="approve",
        by="alice",
        source="decisions-dir",
        default=False,
        value=np.ones(3, np.float32),
    )
    for i in range(3):
        run.record_task_finished("revised", {"revised": np.full(2, i, np.float32)}, iteration=i)
        run.record_loop_iteration("refine", i, done=i == 2)
    run.record_task_finished("page", {}, status=TaskStatus.SKIPPED, reason="guard false")


def digest(state) -> tuple:
    """A comparable picture of a RunState (arrays by hash)."""
    tasks = {k: (r.status, {n: value_sha256(v) for n, v in r.values.items()}) for k, r in state.tasks.items()}
    return (
        state.records,
        tasks,
        dict(state.tool_results),
        dict(state.in_flight),
        dict(state.loops),
        {k: (g.decision, g.by) for k, g in state.gates.items()},
        state.status,
    )


def test_create_record_replay_roundtrip(tmp_path: Path) -> None:
    clock = FakeClock(wall_start=1_750_000_000.0)
    with RunDir.create(tmp_path, BUNDLE, {"frame": FRAME}, run_id="run1", clock=clock) as run:
        populate(run)
        assert run.run_id == "run1" and run.work_dir.is_dir()
    with RunDir.open(tmp_path / "run1") as run:
        state = run.replay()
    assert (state.run_id, state.bundle_sha256, state.status) == ("run1", BUNDLE, None)
    np.testing.assert_array_equal(state.inputs["frame"], FRAME)
    pre = state.finished("pre")
    assert pre is not None and pre.status is TaskStatus.OK
    np.testing.assert_array_equal(pre.values["pre"], FRAME * 2)
    assert pre.values["pre.1"].dtype == np.int32 and pre.values["pre.1"] == 7
    assert state.finished("alert").values == {"alert": {"sent": True}}
    assert state.tool_results == {"r:alert": {"sent": True}}
    assert set(state.in_flight) == {"r:send:1"} and state.in_flight["r:send:1"].iteration == (1,)
    assert state.tool_failures["r:alert"] == (1, "tool 'notify': timed out")
    gate = state.gates[("review", ())]
    assert (gate.decision, gate.by, gate.default) == ("approve", "alice", False)
    np.testing.assert_array_equal(gate.value, np.ones(3, np.float32))
    assert state.finished("revised", 1) is state.finished("revised", (1,)) is not None
    assert state.finished("revised") is None
    assert state.loops["refine"].iteration == (2,) and state.loops["refine"].done
    assert (
        state.finished("page").status is TaskStatus.SKIPPED and state.finished("page").reason == "guard false"
    )
    np.testing.assert_array_equal(state.values()["revised"], np.full(2, 2, np.float32))  # last iteration wins
    first = json.loads((tmp_path / "run1" / JOURNAL).read_text().splitlines()[0])
    assert first["at"] == 1_750_000_000.0 and first["inputs"]["frame"]["sha256"] == value_sha256(FRAME)


def test_run_finished_and_append_after_reopen(tmp_path: Path) -> None:
    with RunDir.create(tmp_path, BUNDLE, {}, run_id="r") as run:
        run.record_task_finished("a", {"a": np.float32(1)})
    with RunDir.open(tmp_path / "r") as run:
        run.record_run_finished("ok")
    with RunDir.open(tmp_path / "r") as run:
        state = run.replay()
        assert state.status == "ok" and state.records == 3
        assert [r["seq"] for r in run.journal.records] == [0, 1, 2]


def test_replay_after_truncation_at_every_byte_of_the_last_record(tmp_path: Path) -> None:
    with RunDir.create(tmp_path, BUNDLE, {"frame": FRAME}, run_id="r") as run:
        populate(run)
        run.record_tool_completed("r:send:1", {"status": "sent", "note": "é ünïcode"})
    path = tmp_path / "r" / JOURNAL
    full = path.read_bytes()
    start = full.rstrip(b"\n").rfind(b"\n") + 1
    assert 100 < len(full) - start < 400
    with RunDir.open(tmp_path / "r") as run:
        complete = run.replay()
    assert "r:send:1" in complete.tool_results and not complete.in_flight
    for cut in range(start, len(full) + 1):
        path.write_bytes(full[:cut])
        with RunDir.open(tmp_path / "r") as run:
            state = run.replay()
        if cut == len(full):
            assert digest(state) == digest(complete)
        else:
            # The torn last record is dropped (and cut off the file): the call is in flight again.
            assert state.records == complete.records - 1 and "r:send:1" in state.in_flight
            assert "r:send:1" not in state.tool_results
            assert path.stat().st_size == start
    path.write_bytes(full[: start + 17])
    with RunDir.open(tmp_path / "r") as run:  # appending after a torn tail continues cleanly
        run.record_tool_completed("r:send:1", {"status": "sent again"})
    with RunDir.open(tmp_path / "r") as run:
        assert run.replay().tool_results["r:send:1"] == {"status": "sent again"}


@pytest.mark.parametrize("damage", ["flip", "drop", "swap"])
def test_a_damaged_middle_is_refused(tmp_path: Path, damage: str) -> None:
    with RunDir.create(tmp_path, BUNDLE, {}, run_id="r") as run:
        populate(run)
    path = tmp_path / "r" / JOURNAL
    lines = path.read_bytes().splitlines(keepends=True)
    if damage == "flip":
        lines[3] = lines[3].replace(b"notify", b"notifx")
    elif damage == "drop":
        del lines[3]
    else:
        lines[3], lines[4] = lines[4], lines[3]
    path.write_bytes(b"".join(lines))
    with pytest.raises(JournalCorrupt, match="record 4 .*damaged before its end; refusing to resume"):
        RunDir.open(tmp_path / "r")
    assert path.read_bytes() == b"".join(lines)  # refused, not "repaired"


def test_a_damaged_last_line_is_a_torn_write(tmp_path: Path) -> None:
    with RunDir.create(tmp_path, BUNDLE, {}, run_id="r") as run:
        populate(run)
    path = tmp_path / "r" / JOURNAL
    data = path.read_bytes()
    path.write_bytes(data[:-5] + b"\x00\x00\x00\x00\n")  # a block of zeros, newline included
    with RunDir.open(tmp_path / "r") as run:
        assert run.replay().finished("page") is None


def test_tampered_or_missing_value_files_are_refused(tmp_path: Path) -> None:
    with RunDir.create(tmp_path, BUNDLE, {"frame": FRAME}, run_id="r") as run:
        populate(run)
    np.save(tmp_path / "r" / "values" / "pre.npy", FRAME * 3)
    with (
        RunDir.open(tmp_path / "r") as run,
        pytest.raises(JournalCorrupt, match="values/pre.npy does not match"),
    ):
        run.replay()
    (tmp_path / "r" / "values" / "pre.npy").unlink()
    with RunDir.open(tmp_path / "r") as run, pytest.raises(JournalCorrupt, match="values/pre.npy is missing"):
        run.replay()


def test_bad_run_directories(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="not a run directory"):
        RunDir.open(tmp_path)
    with RunDir.create(tmp_path, BUNDLE, {}, run_id="r"):
        pass
    with pytest.raises(JournalError, match="already exists"):
        RunDir.create(tmp_path, BUNDLE, {}, run_id="r")
    with pytest.raises(JournalError, match="bad run id"):
        RunDir.create(tmp_path, BUNDLE, {}, run_id="../escape")
    with pytest.raises(ValueError, match="cannot store value 'bad/name'"):
        RunDir.create(tmp_path, BUNDLE, {"bad/name": np.zeros(1)}, run_id="half")
    assert not (tmp_path / "half").exists()  # a run that never started leaves no half-made directory
    (tmp_path / "r" / JOURNAL).write_bytes(b'{"type": "run_st')  # crashed while starting
    with pytest.raises(JournalError, match="never started"):
        RunDir.open(tmp_path / "r")


def test_values_of_every_kind_roundtrip(tmp_path: Path) -> None:
    import ml_dtypes

    values = {
        "f": np.arange(6, dtype=np.float16).reshape(2, 3),
        "b": np.array([True, False]),
        "i": np.array(-3, np.int64),
        "bf": np.arange(4, dtype=ml_dtypes.bfloat16),
        "j": [1, {"x": "y"}],
        "n": 2.5,
        "s": "text",
        "nil": None,
    }
    with RunDir.create(tmp_path, BUNDLE, {}, run_id="r") as run:
        run.record_task_finished("t", values, iteration=(1, 2))
    with RunDir.open(tmp_path / "r") as run:
        got = run.replay().finished("t", (1, 2)).values
    for k, v in values.items():
        if isinstance(v, np.ndarray):
            assert got[k].dtype == v.dtype and got[k].shape == v.shape
            np.testing.assert_array_equal(got[k], v)
        else:
            assert got[k] == v
    assert (tmp_path / "r" / "values" / "bf@1.2.npy").exists()


def test_lock_in_process_and_across_processes(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path, BUNDLE, {}, run_id="r")
    with pytest.raises(RunLocked, match=f"in use by another planrt process \\(pid {os.getpid()}\\)"):
        RunDir.open(tmp_path / "r")
    run.close()
    holder = textwrap.dedent(f"""
        import sys
        from planc.runtime.journal.rundir import RunDir
        run = RunDir.open({str(tmp_path / "r")!r})
        print("locked", flush=True)
        sys.stdin.readline()
        run.record_run_finished("ok")
        run.close()
    """)
    proc = subprocess.Popen(
        [sys.executable, "-c", holder], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(RunLocked, match=f"pid {proc.pid}"):
            RunDir.open(tmp_path / "r")
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
    with RunDir.open(tmp_path / "r") as again:  # released when the holder ended
        assert again.replay().status == "ok"


def test_crash_between_value_write_and_record(tmp_path: Path) -> None:
    """A process killed mid-run: what it journaled is there, what it did not is not."""
    script = textwrap.dedent(f"""
        import os, signal
        import numpy as np
        from planc.runtime.journal.rundir import RunDir
        run = RunDir.create({str(tmp_path)!r}, {BUNDLE!r}, {{}}, run_id="c")
        run.record_task_finished("a", {{"a": np.float32(1)}})
        run.record_tool_intent("c:b", task="b", tool="send", attempt=1)
        from planc.runtime.journal import valuestore
        valuestore.write_value(run.path, "b", None, {{"half": "done"}})
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    assert subprocess.run([sys.executable, "-c", script], check=False, timeout=60).returncode == -9
    with RunDir.open(tmp_path / "c") as run:  # the dead process's lock is gone with it
        state = run.replay()
    assert state.finished("a") is not None and state.finished("b") is None
    assert list(state.in_flight) == ["c:b"]


def test_journal_scan_reports_offsets(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    j = Journal(path, [], clock=FakeClock())
    from planc.runtime.journal.rundir import RecordType

    for _ in range(3):
        j.append(RecordType.RUN_FINISHED, status="ok")
    j.close()
    records, good = Journal.scan(path)
    assert [r["seq"] for r in records] == [0, 1, 2] and good == path.stat().st_size
