"""kill -9 of `planrt run` at random points, then `planrt resume`: identical outputs, and no
completed tool call is ever issued again (in-flight calls are redelivered with the same key)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.iree, pytest.mark.slow]

PLAN = Path(__file__).parent / "plans" / "crash" / "crash.plan"
PLANRT = [sys.executable, "-m", "planc.runtime.cli"]
TRIALS = int(os.environ.get("PLANC_CRASH_TRIALS", "20"))


@pytest.fixture(scope="module")
def crash_bundle(tmp_path_factory):
    from planc.compiler.bundle.build import BuildOptions, build_bundle

    out = tmp_path_factory.mktemp("crash") / "crash.planb"
    build_bundle(PLAN, out, options=BuildOptions(progress=None))
    x = tmp_path_factory.mktemp("inputs") / "x.npy"
    np.save(x, np.linspace(-1, 1, 32, dtype=np.float32).reshape(4, 8))
    return out, x


def _env(d: Path) -> dict[str, str]:
    return {**os.environ, "INVOCATIONS": str(d / "invocations.jsonl"), "OUTBOX": str(d / "outbox.jsonl"),
            "RECORD_SLEEP": "0.05"}


def _outputs(d: Path) -> dict[str, object]:
    out = {}
    for f in sorted(d.iterdir()):
        if f.suffix == ".npy":
            out[f.stem] = np.load(f).tolist()
        elif f.suffix == ".json" and f.name != "summary.json":
            out[f.stem] = json.loads(f.read_text())
    return out


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.exists() else []


def _completed_keys(run_dir: Path) -> set[str]:
    journal = run_dir / "journal.jsonl"
    keys = set()
    for line in journal.read_bytes().splitlines() if journal.exists() else []:
        try:
            rec = json.loads(line)
        except ValueError:
            continue  # a torn last line
        if rec.get("type") == "tool_completed":
            keys.add(rec["key"])
    return keys


def test_kill_and_resume(crash_bundle, tmp_path):
    bundle, x = crash_bundle
    ref_dir = tmp_path / "ref"
    ref_dir.mkdir()
    t0 = time.monotonic()
    subprocess.run([*PLANRT, "run", str(bundle), "-i", f"x={x}", "--run-dir", str(ref_dir / "runs"),
                    "--output-dir", str(ref_dir / "out")], env=_env(ref_dir), check=True, capture_output=True)
    full = time.monotonic() - t0
    expected = _outputs(ref_dir / "out")
    rng = random.Random(1234)
    for trial in range(TRIALS):
        d = tmp_path / f"t{trial}"
        d.mkdir()
        proc = subprocess.Popen([*PLANRT, "run", str(bundle), "-i", f"x={x}", "--run-dir", str(d / "runs"),
                                 "--run-id", "r", "--output-dir", str(d / "first")], env=_env(d),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(rng.uniform(0.0, full))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        run_dir = d / "runs" / "r"
        done_before = _completed_keys(run_dir)
        journal = run_dir / "journal.jsonl"
        if journal.exists() and '"run_started"' in journal.read_text(errors="replace"):
            cmd = [*PLANRT, "resume", str(run_dir), "--output-dir", str(d / "out")]
        else:  # killed before its run_started record was durable: nothing to resume, start it again
            cmd = [*PLANRT, "run", str(bundle), "-i", f"x={x}", "--run-dir", str(d / "runs2"),
                   "--output-dir", str(d / "out")]
        res = subprocess.run(cmd, env=_env(d), capture_output=True, text=True, check=False)
        assert res.returncode == 0, f"trial {trial}: {res.stderr}"
        assert _outputs(d / "out") == expected, f"trial {trial}"
        sent = [r["key"] for r in _lines(d / "outbox.jsonl")]
        assert len(sent) == len(set(sent)) == 3, f"trial {trial}: outbox {sent}"
        calls = [r["key"] for r in _lines(d / "invocations.jsonl")]
        for key in done_before:
            assert calls.count(key) == 1, f"trial {trial}: completed call {key} issued again"
