"""Bundle soak: tampered bundles through the loader in process, and a sample through `planrt inspect` and `run`."""

from __future__ import annotations

import contextlib
import io
import os
import random
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from planc.runtime.bundle.loader import BundleError, DigestMismatch, load_bundle, summarize
from planc.runtime.bundle.trust import Trust
from planc.runtime.cli import main as planrt_main
from planc.runtime.contract.dtypes import DType
from soak_tamper import TAMPERS, Good, Tampered

__all__ = ["BundleReport", "run_bundles"]

PLANRT = [sys.executable, "-m", "planc.runtime.cli"]


@dataclass
class BundleReport:
    """Counts of a bundle campaign; `failures` lists every broken promise."""

    bundles: int = 0
    unchanged: int = 0
    rejected: Counter[str] = field(default_factory=Counter)  # by error code
    by_tamper: Counter[str] = field(default_factory=Counter)
    accepted_consistent: Counter[str] = field(default_factory=Counter)  # re-hashed edits: a new bundle
    same_content: Counter[str] = field(default_factory=Counter)  # zip metadata changed, members the same
    runs: Counter[str] = field(default_factory=Counter)  # planrt run of accepted bundles, by exit status
    pinned_rejected: int = 0
    trusted: bool = False  # loaded with trusted keys (soak.py --trust): every content change must be refused
    consistent_refused: Counter[str] = field(default_factory=Counter)  # re-hashed edits refused (by trust)
    cli_runs: int = 0
    seconds: float = 0.0
    failures: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_json(self) -> dict[str, Any]:
        return {"bundles": self.bundles, "unchanged": self.unchanged, "rejected": dict(self.rejected),
                "rejected_total": sum(self.rejected.values()), "by_tamper": dict(self.by_tamper),
                "accepted_consistent": dict(self.accepted_consistent),
                "same_content": dict(self.same_content), "runs": dict(self.runs), "pinned_rejected": self.pinned_rejected,
                "trusted": self.trusted, "consistent_refused": dict(self.consistent_refused),
                "consistent_total": sum(self.consistent_refused.values()) + sum(self.accepted_consistent.values()),
                "cli_runs": self.cli_runs, "seconds": round(self.seconds, 1), "failures": self.failures[:50]}


def _fail(report: BundleReport, kind: str, tamper: str, what: str, detail: str) -> None:
    report.failures.append({"kind": kind, "tamper": tamper, "what": what, "detail": detail[-2000:]})


def _named(err: BundleError) -> bool:
    """The error says what is wrong: its message names the member, or the bundle as a whole."""
    text = str(err)
    return bool(text) and (err.member is None or err.member in text or repr(err.member) in text)


def run_bundles(goods: list[Path], count: int, seed: int, *, cli_sample: int = 0,
                progress: Any = None, trust: list[Path] | None = None) -> BundleReport:
    """Tamper with the `goods` bundles `count` times (seeded); load each without and with a pinned digest.
    With `trust` (public keys the goods are signed with), every load requires a trusted signature, and
    the signature's own tamperers join (scripts/soak_signed.py)."""
    rng = random.Random(seed)
    parsed = [(p, Good.parse(p.read_bytes())) for p in goods]
    keys = Trust.from_paths(trust) if trust else None
    digests = {p: load_bundle(p, trust=keys).sha256 for p in goods}
    tampers = dict(TAMPERS)
    if keys is not None:
        from soak_signed import SIGNED_TAMPERS

        tampers |= SIGNED_TAMPERS
    names = sorted(tampers)
    report = BundleReport(trusted=keys is not None)
    sample: list[tuple[str, Tampered, str]] = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="soak-bundles-", dir=_scratch()) as tmp:
        path = Path(tmp) / "t.planb"
        for n in range(count):
            src, good = parsed[n % len(parsed)]
            tamper = names[(n // len(parsed)) % len(names)]
            t = tampers[tamper](good, rng)
            if t.data == good.data:
                report.unchanged += 1
                continue
            report.bundles += 1
            report.by_tamper[tamper] += 1
            path.write_bytes(t.data)
            _load_one(report, path, tamper, t, good, digests[src], keys)
            if len(sample) < cli_sample and not t.consistent and rng.random() < max(0.02, 3 * cli_sample / count):
                sample.append((tamper, t, digests[src]))
            if progress is not None and n and n % 1000 == 0:
                progress(f"bundles: {n}/{count}")
        for tamper, t, digest in sample:
            _cli_one(report, Path(tmp), tamper, t, digest, trust or [])
    report.seconds = time.perf_counter() - start
    return report


def _scratch() -> str | None:
    return "/dev/shm" if os.access("/dev/shm", os.W_OK) else None  # 10k bundles of a MiB: keep them off disk


def _load_one(report: BundleReport, path: Path, tamper: str, t: Tampered, good: Good, digest: str,
              trust: Trust | None = None) -> None:
    try:
        bundle = load_bundle(path, trust=trust)
    except BundleError as e:
        report.rejected[e.code] += 1
        if t.consistent:
            report.consistent_refused[tamper] += 1
        if not _named(e):
            _fail(report, "unnamed", tamper, t.what, f"{type(e).__name__}: {e}")
    except Exception:  # noqa: BLE001 (the campaign counts every escape)
        _fail(report, "traceback", tamper, t.what, traceback.format_exc())
        return
    else:
        members = {m: bundle.read(m) for m in bundle.members}
        if bundle.manifest == good.manifest and members == dict(good.entries[1:]):
            report.same_content[tamper] += 1  # only zip metadata changed (a date, a version field)
        elif trust is not None:
            _fail(report, "accepted", tamper, t.what, "trusted keys accepted a bundle that is not the signed one")
        elif not t.consistent:
            _fail(report, "accepted", tamper, t.what, "the loader accepted a bundle whose hashes do not match")
        else:
            report.accepted_consistent[tamper] += 1
            # A consistent edit of a variant's 'requires' can make planrt pick machine code this CPU
            # cannot run (SIGILL, the whole process gone): only a pin guards that, so such bundles
            # are inspected but not run here.
            runnable = bundle.manifest.get("modules") == good.manifest.get("modules")
            _inspect(report, bundle, path, tamper, t, run=runnable)
    try:
        load_bundle(path, sha256=digest)
    except DigestMismatch:
        report.pinned_rejected += 1
    except Exception:  # noqa: BLE001
        _fail(report, "traceback", tamper, t.what, "pinned: " + traceback.format_exc())
    else:
        _fail(report, "accepted", tamper, t.what, "the loader accepted a bundle that is not the pinned one")


def _inspect(report: BundleReport, bundle: Any, path: Path, tamper: str, t: Tampered, *, run: bool) -> None:
    """A bundle that passed verification: `planrt inspect` and `planrt run` (in process) finish, or name
    a problem; neither ends in an internal error."""
    try:
        summarize(bundle)
    except Exception:  # noqa: BLE001
        _fail(report, "traceback", tamper, t.what, "summarize: " + traceback.format_exc())
        return
    with tempfile.TemporaryDirectory(dir=path.parent) as d:
        inputs = []
        for i in bundle.manifest["inputs"]:
            f = Path(d) / f"{i['name']}.npy"
            try:
                np.save(f, np.full(i["shape"], 0.5, dtype=_NP.get(i["dtype"], "float32")))
            except (ValueError, MemoryError, TypeError):
                continue  # a shape numpy cannot make: planrt will name the missing input
            inputs += ["-i", f"{i['name']}={f}"]
        env = {"PLANC_OUTBOX": f"{d}/outbox", "PLANC_NOTIFY_LOG": f"{d}/notify.log", "OUTBOX": f"{d}/outbox",
               "INVOCATIONS": f"{d}/invocations", "RECORD_SLEEP": "0"}
        runs = [["run", str(path), *inputs, "--run-dir", f"{d}/runs", "--auto-approve", "--json"]] if run else []
        if not run:
            report.runs["not run: modules edited"] += 1
        for argv in [["inspect", str(path)], *runs]:
            out, err = io.StringIO(), io.StringIO()
            try:
                with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), _environ(env):
                    rc = planrt_main(argv)
            except BaseException:  # noqa: BLE001 (SystemExit included: argparse must not be reached)
                _fail(report, "traceback", tamper, t.what, f"{argv[0]}: " + traceback.format_exc())
                continue
            if argv[0] == "run":
                report.runs[str(rc)] += 1
            if rc not in (0, 1) or (rc == 1 and "planrt: error:" not in err.getvalue() and argv[0] == "inspect"):
                _fail(report, "traceback", tamper, t.what, f"planrt {argv[0]} exited {rc}: {err.getvalue()[-1500:]}")


# bf16 inputs are written as f32 (numpy has no bfloat16 without ml_dtypes).
_NP = {d.value: d.numpy for d in DType if d is not DType.BF16}


@contextlib.contextmanager
def _environ(env: dict[str, str]) -> Any:
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _cli_one(report: BundleReport, tmp: Path, tamper: str, t: Tampered, digest: str, trust: list[Path]) -> None:
    """`planrt inspect`, `planrt run` and a pinned `planrt run` in an empty directory: a named error,
    exit 1, and nothing written (no run directory, no tool output, no unpacked member)."""
    with tempfile.TemporaryDirectory(dir=tmp) as d:
        cwd = Path(d)
        bundle = cwd / "b.planb"
        bundle.write_bytes(t.data)
        trusted = [a for k in trust for a in ("--trust", str(k))]
        try:
            load_bundle(bundle, trust=Trust.from_paths(trust) if trust else None)
            expected = ""
        except BundleError as e:
            member = e.member or ""
            expected = member if member in str(e) else repr(member)[1:-1]
        run = ["run", str(bundle), "--run-dir", str(cwd / "runs"), "--auto-approve", "-i", "x=x.npy", *trusted]
        for argv in (["inspect", str(bundle), *trusted], run, [*run, "--sha256", digest]):
            proc = subprocess.run([*PLANRT, *argv], cwd=cwd, capture_output=True, text=True, timeout=300,
                                  check=False, env={**os.environ, "PLANC_OUTBOX": str(cwd / "outbox"),
                                                    "PLANC_NOTIFY_LOG": str(cwd / "notify.log")})
            report.cli_runs += 1
            err = proc.stderr
            if proc.returncode != 1 or "planrt: error:" not in err or "Traceback" in err:
                _fail(report, "cli", tamper, t.what, f"planrt {argv[0]} exited {proc.returncode}: {err[-1500:]}")
            elif "--sha256" in argv and "not the pinned" not in err:
                _fail(report, "cli", tamper, t.what, f"planrt {argv[0]} did not name the digest: {err[-500:]}")
            elif "--sha256" not in argv and expected not in err:
                _fail(report, "cli", tamper, t.what, f"planrt {argv[0]} did not name {expected!r}: {err[-500:]}")
        written = set(cwd.rglob("*")) - {bundle}
        if written:
            _fail(report, "cli", tamper, t.what, f"files written: {sorted(map(str, written))[:10]}")
        if (tmp / "evil").exists() or (cwd.parent / "evil").exists():
            _fail(report, "cli", tamper, t.what, "a member was written outside the bundle's place")
