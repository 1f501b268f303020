"""Crash soak: `planrt run` killed with SIGKILL at random points of every plan, then `planrt resume`."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["PLANS", "CrashReport", "PlanCase", "build", "prepare", "run_crashes"]

PLANRT = [sys.executable, "-m", "planc.runtime.cli"]
ROOT = Path(__file__).resolve().parents[1]
# (plan file, plan name): every example plan, the crash test's plan, and the soak's own fault plan
# (tool retries, an opening breaker, a gate, a loop).
PLANS = [("examples/agent/agent.plan", "triage"), ("examples/defects/defects.plan", "defects"),
         ("examples/sensors/sensors.plan", "sensors"), ("examples/sensors/sensors.plan", "vib_screen"),
         ("tests/e2e/plans/crash/crash.plan", "crash"), ("scripts/soak_plans/flaky/flaky.plan", "flaky")]


@dataclass
class PlanCase:
    """A compiled plan with its inputs, its clean run's outputs and tool log, and how long a run takes."""

    name: str
    bundle: Path
    inputs: list[str]
    expected: dict[str, Any] = field(default_factory=dict)
    outbox: list[str] = field(default_factory=list)
    startup_s: float = 0.0
    run_s: float = 0.0


@dataclass
class CrashReport:
    trials: int = 0
    by_plan: Counter[str] = field(default_factory=Counter)
    phases: Counter[str] = field(default_factory=Counter)  # where the kill landed
    resumed: int = 0
    identical: int = 0
    exactly_once: int = 0
    seconds: float = 0.0
    failures: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_json(self) -> dict[str, Any]:
        return {"trials": self.trials, "by_plan": dict(self.by_plan), "phases": dict(self.phases),
                "resumed": self.resumed, "identical": self.identical, "exactly_once": self.exactly_once,
                "seconds": round(self.seconds, 1), "failures": self.failures[:50]}


def _env(d: Path) -> dict[str, str]:
    return {**os.environ, "INVOCATIONS": str(d / "invocations.jsonl"), "OUTBOX": str(d / "outbox.jsonl"),
            "PLANC_OUTBOX": str(d / "outbox.jsonl"), "PLANC_NOTIFY_LOG": str(d / "notify.jsonl"),
            "RECORD_SLEEP": "0.05"}


def _lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def _side_effects(d: Path) -> list[str]:
    """Every side effect the tools logged: outbox keys, and each notify call's arguments."""
    notes = [json.dumps(r.get("args")) for r in _lines(d / "notify.jsonl")]
    return sorted([r["key"] for r in _lines(d / "outbox.jsonl")] + notes)


def _outputs(d: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in sorted(d.iterdir()) if d.exists() else ():
        if f.suffix == ".npy":
            out[f.stem] = np.load(f).tolist()
        elif f.suffix == ".json" and f.name != "summary.json":
            out[f.stem] = json.loads(f.read_text())
    return out


def _start(case: PlanCase, d: Path, runs: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([*PLANRT, "run", str(case.bundle), *case.inputs, "--run-dir", str(runs),
                             "--run-id", "r", "--output-dir", str(d / "first"), "--auto-approve"],
                            env=_env(d), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)


def _wait_journal(proc: subprocess.Popen[bytes], journal: Path) -> bool:
    while not journal.exists():
        if proc.poll() is not None:
            return False
        time.sleep(0.002)
    return True


def build(work: Path, plans: list[tuple[str, str]] = PLANS) -> dict[str, Path]:
    """Compile each plan (through the module cache) to WORK/PLAN/PLAN.planb."""
    from planc.compiler.bundle.build import BuildOptions, build_bundle

    out = {}
    for file, plan in plans:
        (work / plan).mkdir(parents=True, exist_ok=True)
        out[plan] = build_bundle(ROOT / file, work / plan / f"{plan}.planb", plan=plan,
                                 options=BuildOptions(progress=None)).path
    return out


def prepare(work: Path, bundles: dict[str, Path]) -> list[PlanCase]:
    """Write each bundle's inputs and run it once cleanly: the outputs and side effects to match."""
    cases = []
    for plan, path in bundles.items():
        d = work / plan
        d.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        inputs = []
        for i in _manifest(path)["inputs"]:
            a = np.abs(rng.standard_normal(i["shape"])).astype(np.float32)
            np.save(d / f"{i['name']}.npy", a)
            inputs += ["-i", f"{i['name']}={d / (i['name'] + '.npy')}"]
        case = PlanCase(plan, path, inputs)
        ref = d / "ref"
        ref.mkdir(exist_ok=True)
        t0 = time.monotonic()
        proc = _start(case, ref, ref / "runs")
        journal = ref / "runs" / "r" / "journal.jsonl"
        _wait_journal(proc, journal)
        t1 = time.monotonic()
        while proc.poll() is None and b'"run_finished"' not in journal.read_bytes():
            time.sleep(0.005)
        t2 = time.monotonic()
        _, err = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"clean run of {plan} failed: {err.decode()[-2000:]}")
        case.startup_s, case.run_s = t1 - t0, t2 - t1  # kills land between the first and last record
        case.expected, case.outbox = _outputs(ref / "first"), _side_effects(ref)
        cases.append(case)
    return cases


def _manifest(bundle: Path) -> dict[str, Any]:
    from planc.runtime.bundle.loader import load_bundle

    return load_bundle(bundle).manifest


def _completed(journal: Path) -> set[str]:
    keys = set()
    for line in journal.read_bytes().splitlines() if journal.exists() else []:
        try:
            rec = json.loads(line)
        except ValueError:
            continue  # a torn last line
        if rec.get("type") == "tool_completed":
            keys.add(rec["key"])
    return keys


def run_crashes(cases: list[PlanCase], trials: int, seed: int, work: Path, progress: Any = None) -> CrashReport:
    """`trials` kills spread over `cases` in turn; each resumed and compared with the clean run."""
    rng = random.Random(seed)
    report = CrashReport()
    start = time.perf_counter()
    for n in range(trials):
        case = cases[n % len(cases)]
        d = work / case.name / f"t{n}"
        d.mkdir(parents=True)
        _trial(case, d, rng, report)
        if progress is not None:
            progress(f"crashes: {n + 1}/{trials}")
    report.seconds = time.perf_counter() - start
    return report


def _trial(case: PlanCase, d: Path, rng: random.Random, report: CrashReport) -> None:
    report.trials += 1
    report.by_plan[case.name] += 1
    runs = d / "runs"
    journal = runs / "r" / "journal.jsonl"
    proc = _start(case, d, runs)
    if rng.random() < 0.1:  # sometimes while planrt starts up, before the run exists
        time.sleep(rng.uniform(0, case.startup_s))
    elif _wait_journal(proc, journal):
        time.sleep(rng.uniform(0, case.run_s))
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = _completed(journal)
    calls_before = len(_lines(d / "invocations.jsonl"))
    if not journal.exists():
        report.phases["before the journal"] += 1
        cmd = [*PLANRT, "run", str(case.bundle), *case.inputs, "--run-dir", str(d / "runs2"), "--run-id", "r"]
    else:
        finished = any(r.get("type") == "run_finished" for r in _safe_records(journal))
        report.phases["after the run finished" if finished else "mid-run"] += 1
        cmd = [*PLANRT, "resume", str(runs / "r")]
    res = subprocess.run([*cmd, "--output-dir", str(d / "out"), "--auto-approve"], env=_env(d),
                         capture_output=True, text=True, check=False, timeout=600)
    fail = {"plan": case.name, "trial": d.name}
    if res.returncode != 0:
        report.failures.append({**fail, "why": f"resume exited {res.returncode}: {res.stderr[-1500:]}"})
        return
    report.resumed += 1
    got = _outputs(d / "out")
    if got != case.expected:
        diff = sorted(k for k in set(got) | set(case.expected) if got.get(k) != case.expected.get(k))
        report.failures.append({**fail, "why": f"outputs differ from the clean run: {diff}"})
    else:
        report.identical += 1
    effects = _side_effects(d)
    again = [r["key"] for r in _lines(d / "invocations.jsonl")[calls_before:] if r["key"] in done_before]
    if effects != case.outbox or again:
        report.failures.append({**fail, "why": f"side effects {effects} vs clean {case.outbox}; completed "
                                               f"calls issued again: {again}"})
    else:
        report.exactly_once += 1


def _safe_records(journal: Path) -> list[dict[str, Any]]:
    out = []
    for line in journal.read_bytes().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out
