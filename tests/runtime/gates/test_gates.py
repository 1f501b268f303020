"""Review gates: auto, a decisions directory written by another process, a fake TTY, and the audit log."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from planc.runtime.gates.keeper import (
    AuditLog,
    AutoApprove,
    Decision,
    DecisionsDir,
    GateError,
    GateKeeper,
    Interactive,
)
from planc.runtime.journal.clock import FakeClock, SystemClock
from planc.runtime.journal.valuestore import value_sha256

LABEL = np.array([[0.1, 0.7, 0.2]], dtype=np.float32)


def keeper(tmp_path: Path, source, clock=None) -> GateKeeper:
    clock = clock or FakeClock()
    return GateKeeper(source, AuditLog(tmp_path / "audit.jsonl", clock=clock), clock=clock)


def test_auto_approve_is_audited(tmp_path: Path) -> None:
    k = keeper(tmp_path, AutoApprove())
    d = k.decide("review", LABEL, timeout=30.0, default="reject")
    assert d.approved and d.by == "planrt --auto-approve" and not d.default and not d.edited
    assert d.value is LABEL and d.value_sha256 == value_sha256(LABEL)
    waiting, decided = k.audit.read()
    assert (
        waiting["event"] == "gate_waiting" and waiting["default"] == "reject" and waiting["timeout"] == 30.0
    )
    assert {
        k: decided[k] for k in ("event", "gate", "decision", "by", "source", "default", "value_sha256")
    } == {
        "event": "gate_decided",
        "gate": "review",
        "decision": "approve",
        "by": "planrt --auto-approve",
        "source": "auto",
        "default": False,
        "value_sha256": value_sha256(LABEL),
    }
    assert decided["at"] == 1_700_000_000.0


def test_decision_written_by_another_process(tmp_path: Path) -> None:
    decisions = tmp_path / "decisions"
    decisions.mkdir()
    writer = textwrap.dedent(f"""
        import json, os, time
        time.sleep(0.3)
        path = os.path.join({str(decisions)!r}, "review.json")
        with open(path + ".tmp", "w") as f:
            json.dump({{"decision": "approve", "by": "alice", "value": [[0.0, 1.0, 0.0]]}}, f)
        os.rename(path + ".tmp", path)
    """)
    proc = subprocess.Popen([sys.executable, "-c", writer])
    k = keeper(tmp_path, DecisionsDir(decisions, poll_interval=0.02), clock=SystemClock())
    start = time.monotonic()
    d = k.decide("review", LABEL, timeout=30.0, default="reject")
    assert proc.wait(timeout=10) == 0
    assert 0.25 < time.monotonic() - start < 10
    assert d.approved and d.by == "alice" and d.edited and not d.default
    assert d.value.dtype == np.float32 and d.value.shape == (1, 3)
    np.testing.assert_array_equal(d.value, [[0.0, 1.0, 0.0]])
    decided = k.audit.read()[-1]
    assert decided["value_sha256"] == value_sha256(d.value) and decided["original_sha256"] == value_sha256(
        LABEL
    )
    assert decided["source"] == f"decisions-dir:{decisions}" and decided["edited"] is True


def test_timeout_applies_the_default_exactly(tmp_path: Path) -> None:
    clock = FakeClock()
    k = keeper(tmp_path, DecisionsDir(tmp_path, poll_interval=0.5), clock=clock)
    d = k.decide("review", LABEL, timeout=1800.0, default=Decision.REJECT)
    assert not d.approved and d.default and d.by == "default (timeout)"
    assert clock.now() == 1800.0 and max(clock.sleeps) == 0.5
    decided = k.audit.read()[-1]
    assert (decided["decision"], decided["default"], decided["by"]) == ("reject", True, "default (timeout)")


class WritingClock(FakeClock):
    """A fake clock that writes the decision file's successive versions as time passes."""

    def __init__(self, file: Path, versions: list[tuple[float, str]]) -> None:
        super().__init__()
        self.file, self.versions = file, versions

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        while self.versions and self.versions[0][0] <= self.now():
            _, text = self.versions.pop(0)
            self.file.write_text(text)
            os.utime(self.file, ns=(int(self.now() * 1e9),) * 2)  # a new version, even within a tick


def test_invalid_files_are_audited_once_and_ignored(tmp_path: Path) -> None:
    file = tmp_path / "review.json"
    clock = WritingClock(
        file,
        [
            (1.0, "{not json"),
            (2.0, json.dumps({"decision": "maybe", "by": "bob"})),
            (3.0, json.dumps({"decision": "approve", "by": "bob", "value": [1, 2]})),  # wrong shape
            (4.0, json.dumps({"decision": "reject", "by": "bob"})),
        ],
    )
    k = keeper(tmp_path, DecisionsDir(tmp_path, poll_interval=0.25), clock=clock)
    d = k.decide("review", LABEL, timeout=60.0, default="approve")
    assert not d.approved and d.by == "bob" and not d.default and clock.now() == 4.0
    invalid = [e for e in k.audit.read() if e["event"] == "gate_input_invalid"]
    assert [e["error"].split(" (")[0] for e in invalid] == [
        "not valid JSON",
        "unknown gate decision 'maybe': expected one of: approve, reject",
        "edited value has shape [2], expected [1, 3]",
    ]
    assert all(e["file"] == str(file) for e in invalid)


@pytest.mark.parametrize(
    "content,msg",
    [
        ({"decision": "approve"}, "'by' must name who decided"),
        ({"decision": "reject", "by": "x", "value": [[1, 2, 3]]}, "only goes with 'approve'"),
        ({"decision": "approve", "by": "x", "why": "because"}, "unknown key"),
        ([1], "expected an object"),
        ({"decision": "approve", "by": "x", "value": [["a", "b", "c"]]}, "is not a float32 array"),
    ],
)
def test_invalid_decision_contents(tmp_path: Path, content, msg: str) -> None:
    (tmp_path / "review.json").write_text(json.dumps(content))
    k = keeper(tmp_path, DecisionsDir(tmp_path, poll_interval=1.0))
    d = k.decide("review", LABEL, timeout=2.0, default="reject")
    assert d.default
    (invalid,) = [e for e in k.audit.read() if e["event"] == "gate_input_invalid"]
    assert msg in invalid["error"]


def test_iteration_specific_file_wins_inside_loops(tmp_path: Path) -> None:
    (tmp_path / "review.json").write_text(json.dumps({"decision": "approve", "by": "any"}))
    (tmp_path / "review@2.json").write_text(json.dumps({"decision": "reject", "by": "third"}))
    k = keeper(tmp_path, DecisionsDir(tmp_path))
    assert k.decide("review", LABEL, timeout=1.0, default="reject", iteration=1).by == "any"
    d = k.decide("review", LABEL, timeout=1.0, default="approve", iteration=2)
    assert d.by == "third" and not d.approved and d.iteration == (2,)
    assert k.audit.read()[-1]["iteration"] == [2]


def test_interactive_show_then_approve(tmp_path: Path) -> None:
    out = io.StringIO()
    src = Interactive(io.StringIO("show\nwhat\nA\n"), out, by="tester")
    d = keeper(tmp_path, src).decide("review", LABEL, timeout=600.0, default="reject")
    assert d.approved and d.by == "tester" and d.source == "interactive"
    text = out.getvalue()
    assert "gate 'review': float32[1, 3], default reject in 600s" in text
    assert "[[0.1 0.7 0.2]]" in text and "unknown answer 'what'" in text
    assert text.count("approve, reject or show?") == 3


def test_interactive_reject_and_closed_input(tmp_path: Path) -> None:
    src = Interactive(io.StringIO("reject\n"), io.StringIO(), by="tester")
    k = keeper(tmp_path, src)
    assert k.decide("a", {"to": "x"}, timeout=None, default="approve").decision is Decision.REJECT
    d = k.decide("b", LABEL, timeout=None, default="approve")  # input is exhausted now
    assert d.approved and d.default and d.by == "default (input closed)"


def test_interactive_timeout_on_a_silent_terminal(tmp_path: Path) -> None:
    r, w = os.pipe()
    silent = os.fdopen(r, "r")
    src = Interactive(silent, io.StringIO(), by="tester")
    start = time.monotonic()
    try:
        d = keeper(tmp_path, src, clock=SystemClock()).decide("review", LABEL, timeout=0.2, default="reject")
    finally:
        os.close(w)  # EOF ends the reader thread, which holds the stream's lock while it reads
    assert d.default and d.by == "default (timeout)" and not d.approved
    assert 0.2 <= time.monotonic() - start < 5
    assert src._reader is not None
    src._reader.join(timeout=5)
    silent.close()


def test_bad_default_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(GateError, match="expected one of: approve, reject"):
        keeper(tmp_path, AutoApprove()).decide("g", LABEL, timeout=1.0, default="maybe")


def test_audit_log_is_append_only_jsonl(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl", clock=FakeClock())
    log.append("note", x=1)
    log.append("note", x=np.float32(2))  # non-JSON values are written as text
    with open(tmp_path / "audit.jsonl", "ab") as f:
        f.write(b'{"torn')
    assert [e["x"] for e in log.read()] == [1, "2.0"]
