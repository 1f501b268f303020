"""Fault soak: the run directory fills up (a small tmpfs) or turns read-only (a read-only bind mount)."""

from __future__ import annotations

import contextlib
import os
import random
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from soak_crashes import PLANRT, PlanCase, _env, _outputs, _side_effects, _wait_journal, prepare

__all__ = ["FaultReport", "run_faults"]

PAGE = 4096


@dataclass
class FaultReport:
    cases: int = 0
    clear_errors: int = 0
    resumed: int = 0
    notes: list[str] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_json(self) -> dict[str, Any]:
        return {"cases": self.cases, "clear_errors": self.clear_errors, "resumed": self.resumed,
                "notes": self.notes, "failures": self.failures}


def _sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


@contextlib.contextmanager
def _tmpfs(at: Path, size: int) -> Iterator[Path]:
    at.mkdir(parents=True, exist_ok=True)
    _sh("mount", "-t", "tmpfs", "-o", f"size={size}", "soak-tmpfs", str(at))
    try:
        yield at
    finally:
        subprocess.run(["umount", "-l", str(at)], check=False, capture_output=True)


@contextlib.contextmanager
def _read_only(path: Path) -> Iterator[None]:
    """`path` read-only from now on (a read-only bind mount of itself); files already open stay writable."""
    _sh("mount", "--bind", str(path), str(path))
    try:
        _sh("mount", "-o", "remount,bind,ro", str(path))
        yield
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)


def _mount_works(work: Path) -> str | None:
    try:
        with _tmpfs(work / "probe", 64 * 1024):
            return None
    except (subprocess.CalledProcessError, OSError) as e:
        return f"cannot mount a tmpfs here ({getattr(e, 'stderr', b'') or e}); the fault stage needs root"


def run_faults(bundle: Path, work: Path, seed: int = 20, *, small: bool = False) -> FaultReport:
    """Disk-full at several sizes and read-only run directories (at start, mid-run, at resume)."""
    report = FaultReport()
    work.mkdir(parents=True, exist_ok=True)
    why = _mount_works(work)
    if why:
        report.notes.append(why)
        return report
    (case,) = prepare(work, {bundle.stem: bundle})
    rng = random.Random(seed)
    for free in (0, 3, 8) if small else (0, 1, 2, 3, 4, 6, 8, 12, 16, 24):
        _disk_full(case, work / f"full{free}", free, report)
    _read_only_root(case, work / "ro-root", report)
    for n in range(1 if small else 4):
        _read_only_mid_run(case, work / f"ro-mid{n}", rng, report)
    return report


def _expect_clear_error(report: FaultReport, what: str, proc: subprocess.CompletedProcess[str]) -> bool:
    err = proc.stderr
    if proc.returncode == 1 and "planrt: error:" in err and "Traceback" not in err:
        report.clear_errors += 1
        return True
    if proc.returncode == 0:
        return False  # the fault missed the run: nothing to check but the outputs
    report.failures.append({"case": what, "why": f"exited {proc.returncode}: {err[-1500:]}"})
    return False


def _run(case: PlanCase, d: Path, runs: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PLANRT, "run", str(case.bundle), *case.inputs, "--run-dir", str(runs), "--run-id", "r",
                           "--output-dir", str(d / "first"), "--auto-approve"], env=_env(d), capture_output=True,
                          text=True, check=False, timeout=600)


def _resume_and_compare(report: FaultReport, what: str, case: PlanCase, d: Path, run_dir: Path) -> None:
    if (run_dir / "journal.jsonl").exists():
        cmd = [*PLANRT, "resume", str(run_dir)]
    else:  # the fault came before the run started: start it afresh
        cmd = [*PLANRT, "run", str(case.bundle), *case.inputs, "--run-dir", str(d / "runs2"), "--run-id", "r"]
    res = subprocess.run([*cmd, "--output-dir", str(d / "out"), "--auto-approve"], env=_env(d),
                         capture_output=True, text=True, check=False, timeout=600)
    if res.returncode != 0:
        report.failures.append({"case": what, "why": f"resume exited {res.returncode}: {res.stderr[-1500:]}"})
    elif _outputs(d / "out") != case.expected or _side_effects(d) != case.outbox:
        report.failures.append({"case": what, "why": "resumed outputs or side effects differ from a clean run"})
    else:
        report.resumed += 1


def _disk_full(case: PlanCase, d: Path, free_pages: int, report: FaultReport) -> None:
    report.cases += 1
    d.mkdir(parents=True)
    what = f"disk full, {free_pages} pages free"
    with _tmpfs(d / "fs", 4 << 20) as fs:
        filler = fs / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT)  # fill the tmpfs, then give back `free_pages`
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, bytes(PAGE))
        os.close(fd)
        size = filler.stat().st_size
        os.truncate(filler, max(0, size - free_pages * PAGE))
        res = _run(case, d, fs / "runs")
        _expect_clear_error(report, what, res)
        filler.unlink()  # space again: the run must resume from its journal
        _resume_and_compare(report, what, case, d, fs / "runs" / "r")


def _read_only_root(case: PlanCase, d: Path, report: FaultReport) -> None:
    report.cases += 1
    root = d / "runs"
    root.mkdir(parents=True)
    with _read_only(root):
        res = _run(case, d, root)
    if not _expect_clear_error(report, "read-only run root", res) and res.returncode == 0:
        report.failures.append({"case": "read-only run root", "why": "the run wrote to a read-only directory"})


def _read_only_mid_run(case: PlanCase, d: Path, rng: random.Random, report: FaultReport) -> None:
    report.cases += 1
    what = "run directory read-only mid-run"
    runs = d / "runs"
    d.mkdir(parents=True)
    proc = subprocess.Popen([*PLANRT, "run", str(case.bundle), *case.inputs, "--run-dir", str(runs), "--run-id",
                             "r", "--output-dir", str(d / "first"), "--auto-approve"], env=_env(d),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run_dir = runs / "r"
    if _wait_journal(proc, run_dir / "journal.jsonl"):
        time.sleep(rng.uniform(0, case.run_s * 0.8))
    with _read_only(run_dir):
        out, err = proc.communicate(timeout=600)
        res = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
        _expect_clear_error(report, what, res)
        ro = subprocess.run([*PLANRT, "resume", str(run_dir), "--output-dir", str(d / "ro-out"),
                             "--auto-approve"], env=_env(d), capture_output=True, text=True, check=False)
        if res.returncode != 0:
            _expect_clear_error(report, what + ", resumed while still read-only", ro)
    _resume_and_compare(report, what, case, d, run_dir)
