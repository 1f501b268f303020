"""The run directory under real write faults (a file-size limit stands in for a full disk): a clear
JournalError, a journal that keeps exactly its durable records, and no half-made run directories."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from planc.runtime.journal.rundir import RunDir

# Found by scripts/soak.py (docs/reliability.md, disk full on a small tmpfs): ENOSPC ended planrt run in
# an internal error, left a run directory that had never started, and could leave half a record.
FAULT = textwrap.dedent("""
    import resource, signal, sys
    from pathlib import Path
    import numpy as np
    from planc.runtime.journal.runstate import JournalError
    from planc.runtime.journal.rundir import RunDir, RecordType

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
    root, stage = Path(sys.argv[1]), sys.argv[2]
    if stage == "append":
        run = RunDir.create(root, "ab" * 32, {"x": np.zeros(4, np.float32)}, run_id="r")
        run.record_task_finished("t", {"y": np.ones(2, np.float32)})
        size = (root / "r" / "journal.jsonl").stat().st_size
        resource.setrlimit(resource.RLIMIT_FSIZE, (size + 10, size + 10))  # 10 bytes of the next record fit
        try:
            run.record_tool_intent("r:t2", task="t2", tool="send", attempt=1)
        except JournalError as e:
            print("ERROR", e)
        run.close()
    else:
        resource.setrlimit(resource.RLIMIT_FSIZE, (30, 30))  # the inputs' value file does not fit
        try:
            RunDir.create(root, "ab" * 32, {"x": np.zeros(64, np.float32)}, run_id="r")
        except JournalError as e:
            print("ERROR", e)
""")


def _fault(tmp_path: Path, stage: str) -> str:
    out = subprocess.run([sys.executable, "-c", FAULT, str(tmp_path), stage], capture_output=True, text=True,
                         timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_failed_append_keeps_the_journal_whole(tmp_path: Path) -> None:
    out = _fault(tmp_path, "append")
    assert "ERROR cannot append to" in out and "planrt resume" in out
    with RunDir.open(tmp_path / "r") as run:  # no torn record left behind, nothing refused as damaged
        types = [r["type"] for r in run.journal.records]
        assert types == ["run_started", "task_finished"]
        run.record_tool_intent("r:t2", task="t2", tool="send", attempt=1)  # and it goes on appending
    with RunDir.open(tmp_path / "r") as run:
        assert len(run.journal.records) == 3


def test_run_that_cannot_start_leaves_nothing(tmp_path: Path) -> None:
    out = _fault(tmp_path, "create")
    assert "ERROR cannot start the run in" in out
    assert not (tmp_path / "r").exists()
