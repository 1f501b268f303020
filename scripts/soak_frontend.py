"""Front-end soak: mutated .plan inputs through `planc check` and `planc fmt`, in process, each under a time limit."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from planc.dsl.check import check
from planc.dsl.diagnostics import CODES, Diagnostic, DiagnosticError, render_all
from planc.dsl.format import format_module
from planc.dsl.parser import decode_source, parse
from soak_mutate import MUTATORS, Corpus, seed_files

__all__ = ["FrontendReport", "run_frontend"]

FILE = "fuzz.plan"


class _Hang(Exception):
    pass


class _Broken(Exception):
    """A promise the front end broke for one input (not a traceback: a wrong answer)."""


@dataclass
class FrontendReport:
    """Counts of a front-end campaign; `failures` lists every broken promise with the input saved."""

    inputs: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    by_mutator: Counter[str] = field(default_factory=Counter)
    tracebacks: int = 0
    hangs: int = 0
    broken: int = 0
    round_trips: int = 0
    max_seconds: float = 0.0  # CPU time of the slowest input
    max_wall: float = 0.0
    seconds: float = 0.0
    cli_files: int = 0
    cli_mismatches: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.tracebacks or self.hangs or self.broken or self.cli_mismatches)

    def to_json(self) -> dict[str, Any]:
        return {"inputs": self.inputs, "outcomes": dict(self.outcomes), "by_mutator": dict(self.by_mutator),
                "tracebacks": self.tracebacks, "hangs": self.hangs, "broken": self.broken,
                "round_trips": self.round_trips, "max_seconds": round(self.max_seconds, 4),
                "max_wall": round(self.max_wall, 4),
                "seconds": round(self.seconds, 1), "cli_files": self.cli_files,
                "cli_mismatches": self.cli_mismatches, "failures": self.failures[:50]}


def _spanned(diags: tuple[Diagnostic, ...] | list[Diagnostic], text: str | None) -> None:
    """Every diagnostic has a known code; every error points at a place in the input."""
    for d in diags:
        if d.code not in CODES:
            raise _Broken(f"diagnostic with unknown code {d.code}: {d.message}")
        if d.is_error and (d.span is None or d.span.line < 1 or d.span.col < 1):
            raise _Broken(f"error {d.code} has no span: {d.message}")
        if text is not None and d.span is not None and d.span.line > text.count("\n") + 1:
            raise _Broken(f"{d.code} points at line {d.span.line}, past the input's end")
    render_all(diags, {FILE: text or ""})


def check_input(data: bytes) -> tuple[str, int]:
    """Everything `planc check` and `planc fmt` do with `data`: (outcome, error count).

    Raises _Broken when a promise is broken; any other exception is a traceback a user would see.
    """
    try:
        text = decode_source(data, FILE)
    except DiagnosticError as e:
        _spanned(e.diagnostics, None)
        return "undecodable", len(e.diagnostics)
    try:
        module = parse(text, FILE)
    except DiagnosticError as e:
        _spanned(e.diagnostics, text)
        return "syntax", len(e.diagnostics)
    diags = check(module)
    _spanned(diags, text)
    errors = sum(d.is_error for d in diags)
    try:
        out = format_module(module)
    except DiagnosticError as e:  # fmt refuses: fine for a rejected plan, a broken promise for an accepted one
        _spanned(e.diagnostics, text)
        if not errors:
            raise _Broken(f"check accepts the plan but fmt refuses it: {e}") from None
        return "fmt-refused", errors
    again = parse(out, FILE)
    if again != module:
        raise _Broken("fmt changed the plan's meaning (parse(fmt(x)) != parse(x))")
    if format_module(again) != out:
        raise _Broken("fmt is not idempotent")
    if not errors and any(d.is_error for d in check(again)):
        raise _Broken("the formatted plan no longer passes check")
    return ("error" if errors else "clean"), errors


class _Watchdog:
    """A per-input limit on CPU time (ITIMER_VIRTUAL): a busy shared machine does not fake a hang, and
    a timer that fires after the input finished (while being disarmed) is ignored."""

    def __init__(self, limit_s: float) -> None:
        self.limit_s, self.armed = limit_s, False

    def __enter__(self) -> Self:
        self.old = signal.signal(signal.SIGVTALRM, self._fire)
        return self

    def __exit__(self, *exc: object) -> None:
        self.disarm()
        signal.signal(signal.SIGVTALRM, self.old)

    def _fire(self, signum: int, frame: Any) -> None:
        if self.armed:
            self.armed = False
            raise _Hang

    def arm(self) -> None:
        self.armed = True
        signal.setitimer(signal.ITIMER_VIRTUAL, self.limit_s)

    def disarm(self) -> None:
        self.armed = False
        signal.setitimer(signal.ITIMER_VIRTUAL, 0)


def _save(report: FrontendReport, failures_dir: Path | None, n: int, kind: str, mutator: str,
          data: bytes, detail: str) -> None:
    entry: dict[str, Any] = {"n": n, "kind": kind, "mutator": mutator, "detail": detail[-2000:]}
    if failures_dir is not None:
        failures_dir.mkdir(parents=True, exist_ok=True)
        path = failures_dir / f"{kind}-{n}.plan"
        path.write_bytes(data)
        entry["input"] = str(path)
    else:
        entry["input"] = data[:4000].decode("utf-8", "backslashreplace")
    report.failures.append(entry)


def run_frontend(count: int, seed: int, *, limit_s: float = 1.0, failures_dir: Path | None = None,
                 cli_sample: int = 0, progress: Any = None) -> FrontendReport:
    """Mutate the repository's plans `count` times (seeded) and put each mutant through check and fmt."""
    rng = random.Random(seed)
    corpus = Corpus.from_files(seed_files())
    report = FrontendReport()
    names = sorted(MUTATORS)
    sample: list[tuple[bytes, int]] = []
    start = time.perf_counter()
    with _Watchdog(limit_s) as dog:
        for n in range(count):
            mutator = names[n % len(names)]
            data = MUTATORS[mutator](corpus, rng)
            report.inputs += 1
            report.by_mutator[mutator] += 1
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                dog.arm()
                try:
                    outcome, errors = check_input(data)
                finally:
                    dog.disarm()
            except _Hang:
                report.hangs += 1
                _save(report, failures_dir, n, "hang", mutator, data, f"over {limit_s}s of CPU")
                continue
            except _Broken as e:
                report.broken += 1
                _save(report, failures_dir, n, "broken", mutator, data, str(e))
                continue
            except Exception:  # noqa: BLE001 (the campaign counts every escape)
                report.tracebacks += 1
                _save(report, failures_dir, n, "traceback", mutator, data, traceback.format_exc())
                continue
            finally:
                report.max_seconds = max(report.max_seconds, time.process_time() - c0)
                report.max_wall = max(report.max_wall, time.perf_counter() - t0)
            report.outcomes[outcome] += 1
            report.round_trips += outcome in ("clean", "error")
            if outcome in ("syntax", "error", "clean", "fmt-refused") and rng.random() < 0.05:
                corpus.add(data, rng)
            if len(sample) < cli_sample and rng.random() < max(0.01, 4 * cli_sample / count):
                sample.append((data, errors))
            if progress is not None and n and n % 10000 == 0:
                progress(f"frontend: {n}/{count}")
    report.seconds = time.perf_counter() - start
    if sample:
        _cli_spot_check(sample, report, failures_dir)
    return report


def _cli_spot_check(sample: list[tuple[bytes, int]], report: FrontendReport, failures_dir: Path | None) -> None:
    """The same inputs through the real `planc check --json` and `planc fmt --check` processes."""
    with tempfile.TemporaryDirectory(prefix="soak-cli-") as tmp:
        files = []
        for i, (data, _) in enumerate(sample):
            f = Path(tmp) / f"m{i}.plan"
            f.write_bytes(data)
            files.append(str(f))
        planc = [sys.executable, "-m", "planc.compiler.cli"]
        chk = subprocess.run([*planc, "check", "--json", *files], capture_output=True, timeout=600, check=False)
        fmt = subprocess.run([*planc, "fmt", "--check", *files], capture_output=True, timeout=600, check=False)
        report.cli_files = len(files)
        problems = []
        for name, proc in (("check", chk), ("fmt", fmt)):
            if proc.returncode not in (0, 1) or b"Traceback" in proc.stderr or b"internal error" in proc.stderr:
                problems.append(f"planc {name} exited {proc.returncode}: {proc.stderr[-2000:]!r}")
        try:
            errors = Counter(d["file"] for d in json.loads(chk.stdout) if d["severity"] == "error")
        except (ValueError, KeyError, TypeError) as e:
            problems.append(f"planc check --json printed no JSON list: {e}")
            errors = Counter()
        for f, (data, expected) in zip(files, sample, strict=True):
            if not problems and errors.get(f, 0) != expected:
                problems.append(f"{f}: planc check found {errors.get(f, 0)} errors, in process {expected}")
        for i, p in enumerate(problems):
            report.cli_mismatches += 1
            _save(report, failures_dir, i, "cli", "cli", b"", p)
