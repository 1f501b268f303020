"""Reliability-layer overheads: a python tool call, an exec tool call, a journaled record.

    .venv/bin/python benchmarks/tools.py [--calls 200] [--runs 5]

Python tool `embed` (tests/runtime/tools/tools_fixtures/pytools.py) on a 64-float row, per call:
  - ours: ToolRunner's long-lived worker process (killable at a timeout, module loaded once),
  - baseline: a fresh interpreter per call that loads the file and calls the function
    (what "run python tools in a subprocess" costs without a worker),
  - floor: calling the function in-process (no isolation, cannot be killed).
Exec tool `echo.py`, per call (one process per call, as the bundle format requires): ours
(own process group, size-limited pipes, group reaped) against a plain `subprocess.run`.
Journal: one durable `tool_completed` record (write + fsync), and a task record with a
64 KiB array (value file: temp, fsync, rename, directory fsync; then the record).
Medians over `--runs` runs of `--calls` calls each; ratios against ours.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from planc.runtime.journal.rundir import RunDir
from planc.runtime.tools.runner import ToolCall, ToolKind, ToolRunner, ToolSpec

__all__ = ["main"]

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "runtime" / "tools" / "tools_fixtures"
ROW = [float(i) / 64 for i in range(64)]
FRESH = """
import importlib.util, json, sys
sys.path.insert(0, {folder!r})
spec = importlib.util.spec_from_file_location("t", {file!r})
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
req = json.loads(sys.stdin.read())
print(json.dumps(m.embed(*req["args"], idempotency_key=req["key"])))
"""


def per_call(fn: Callable[[], object], calls: int, runs: int) -> float:
    """Median over runs of the mean seconds per call."""
    fn()  # warm up (starts the worker, loads the module)
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter() - t) / calls)
    return statistics.median(samples)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args(argv)
    few = max(1, args.calls // 10)  # process-per-call variants are ~100x slower
    specs = {"embed": ToolSpec("embed", ToolKind.PYTHON, "pytools.py", "embed"),
             "echo": ToolSpec("echo", ToolKind.EXEC, "echo.py")}
    rows: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp, ToolRunner(specs, FIXTURES, cwd=tmp) as runner:
        call = ToolCall("embed", "t", "r", "r:t", (ROW, 2.0), timeout=10.0)
        ours = per_call(lambda: runner.call(call), args.calls, args.runs)
        rows.append(("python tool, worker (ours)", ours))
        src = FRESH.format(folder=str(FIXTURES), file=str(FIXTURES / "pytools.py"))
        req = json.dumps({"args": [ROW, 2.0], "key": "r:t"})
        rows.append(("python tool, fresh interpreter per call", per_call(
            lambda: subprocess.run([sys.executable, "-c", src], input=req, capture_output=True, text=True,
                                   check=True), few, args.runs)))
        sys.path.insert(0, str(FIXTURES))
        spec = importlib.util.spec_from_file_location("bench_pytools", FIXTURES / "pytools.py")
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        rows.append(("python tool, in-process call (floor)", per_call(
            lambda: mod.embed(ROW, 2.0, idempotency_key="r:t"), args.calls, args.runs)))
        echo = ToolCall("echo", "t", "r", "r:t", (ROW,), timeout=10.0)
        exec_ours = per_call(lambda: runner.call(echo), few, args.runs)
        rows.append(("exec tool (echo.py), ToolRunner (ours)", exec_ours))
        ereq = json.dumps({"args": [ROW], "task": "t", "run": "r", "idempotency_key": "r:t", "attempt": 1})
        rows.append(("exec tool (echo.py), plain subprocess.run", per_call(
            lambda: json.loads(subprocess.run([str(FIXTURES / "echo.py")], input=ereq, capture_output=True,
                                              text=True, check=True, cwd=tmp).stdout), few, args.runs)))
        with RunDir.create(tmp, "0" * 64, {}, run_id="bench") as run:
            rows.append(("journal: tool_completed record (fsync)", per_call(
                lambda: run.record_tool_completed("r:t", {"sent": True}), args.calls, args.runs)))
            arr = np.zeros(16384, np.float32)
            rows.append(("journal: task record + 64 KiB value file", per_call(
                lambda: run.record_task_finished("t", {"t": arr}), args.calls, args.runs)))
    print(f"{'what':<44} {'median per call':>16} {'vs ours':>8}")
    for name, sec in rows:
        base = ours if name.startswith("python tool") else exec_ours if name.startswith("exec") else None
        ratio = f"{sec / base:8.2f}x" if base else ""
        print(f"{name:<44} {sec * 1e3:>13.3f} ms {ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
