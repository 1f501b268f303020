"""Traces: exact slices with FakeClock, well-formed Chrome trace JSON, summaries, thread safety."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
from planc.runtime.journal.clock import FakeClock
from planc.runtime.journal.trace import Tracer


def test_spans_are_exact_with_a_fake_clock() -> None:
    clock = FakeClock(100.0)
    tr = Tracer(clock)
    clock.advance(0.5)
    with tr.span("pre", category="compute", lane="cpu0", module="g0") as extra:
        clock.advance(0.25)
        extra["bytes"] = 1024
    tr.add_slice("send", 101.0, 0.125, category="tool", lane="tools", args={"attempt": 2})
    tr.instant("retry", category="policy", lane="tools", args={"delay": 0.1})
    (s1, s2), (i,) = tr.slices, tr.instants
    assert (s1.name, s1.start, s1.duration, s1.lane, dict(s1.args)) == (
        "pre",
        100.5,
        0.25,
        "cpu0",
        {"module": "g0", "bytes": 1024},
    )
    assert (s2.start, s2.duration) == (101.0, 0.125)
    assert i.time == 100.75
    events = tr.to_json()["traceEvents"]
    x = [e for e in events if e["ph"] == "X"]
    assert [(e["name"], e["ts"], e["dur"]) for e in x] == [
        ("pre", 500000.0, 250000.0),
        ("send", 1000000.0, 125000.0),
    ]
    assert next(e for e in events if e["ph"] == "i")["ts"] == 750000.0


def test_chrome_trace_json_is_well_formed(tmp_path: Path) -> None:
    clock = FakeClock()
    tr = Tracer(clock, process="planrt defects")
    for lane in ("cpu0", "gpu0", "cpu0"):
        with tr.span("task", lane=lane, value=np.float32(1.5), arr=np.arange(2)):
            clock.advance(0.001)
    path = tr.write(tmp_path / "trace.json")
    doc = json.loads(path.read_text())
    assert set(doc) >= {"traceEvents"} and doc["displayTimeUnit"] == "ms"
    events = doc["traceEvents"]
    meta = [e for e in events if e["ph"] == "M"]
    assert {"name": "process_name", "args": {"name": "planrt defects"}}.items() <= meta[0].items()
    names = {e["tid"]: e["args"]["name"] for e in meta if e["name"] == "thread_name"}
    assert sorted(names.values()) == ["cpu0", "gpu0"]
    for e in events:
        assert {"ph", "pid", "tid", "name"} <= set(e)
        if e["ph"] == "X":
            assert isinstance(e["ts"], float) and e["dur"] >= 0 and e["tid"] in names
            assert e["args"] == {"value": 1.5, "arr": [0, 1]}
    ts = [e["ts"] for e in events if e["ph"] == "X"]
    assert ts == sorted(ts)
    assert list(tmp_path.iterdir()) == [path]  # no temp file left behind


def test_span_records_errors() -> None:
    tr = Tracer(FakeClock())
    with pytest.raises(RuntimeError), tr.span("bad"):
        raise RuntimeError("boom")
    assert tr.slices[0].args["error"] == "RuntimeError: boom"


def test_summary_counts_totals_medians() -> None:
    clock = FakeClock()
    tr = Tracer(clock)
    for d in (0.1, 0.3, 0.2, 0.4):
        tr.add_slice("a", clock.now(), d, category="compute")
    tr.slice("b", "tool", 0.0, 1.0)
    s = tr.summary()
    assert (s["a"].count, s["a"].total, s["a"].median, s["a"].max) == (
        4,
        pytest.approx(1.0),
        pytest.approx(0.25),
        0.4,
    )
    assert set(tr.summary("tool")) == {"b"}
    table = tr.format_summary().splitlines()
    assert table[0].split() == ["task", "count", "total", "ms", "median", "ms", "max", "ms"]
    assert table[1].split()[0] == "a" and table[2].split()[:2] == ["b", "1"]


def test_tracer_is_thread_safe() -> None:
    tr = Tracer(FakeClock())

    def work(k: int) -> None:
        for i in range(200):
            with tr.span(f"t{k}", lane=f"lane{k % 4}"):
                pass
            tr.instant("tick", lane=f"lane{i % 3}")

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(tr.slices) == 1600 and len(tr.instants) == 1600
    events = tr.events()
    tids = {e["tid"] for e in events if e["name"] == "thread_name"}
    assert len(tids) == 4 and {e["tid"] for e in events if e["ph"] in "Xi"} <= tids
