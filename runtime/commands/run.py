"""`planrt run` and `planrt resume`: execute a bundle on this host, journaled and resumable (a thin
layer over `planc.runtime.load`)."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from planc.runtime.api.errors import (
    BundleError,
    ClusterError,
    HostSpecError,
    InputError,
    JournalError,
    ModuleError,
    NoVariantError,
)
from planc.runtime.api.plan import Plan
from planc.runtime.api.results import Result
from planc.runtime.api.runs import (
    ENGINES,
    AutoApprove,
    DecisionsDir,
    Interactive,
    RunDir,
    load_bundle,
)
from planc.runtime.commands.trustargs import add_trust_arg, not_checked, trust_from

__all__ = ["add_parser", "add_resume_parser", "resume", "run"]


def _common(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--auto-approve", action="store_true", help="approve every review gate (tests, demos)")
    g.add_argument("--decisions", metavar="DIR", help="read gate decisions from DIR/<gate>.json")
    p.add_argument("--output-dir", metavar="DIR", help="write outputs as .npy/.json plus summary.json here")
    p.add_argument("--trace", metavar="FILE", help="write a Chrome trace (opens in Perfetto)")
    p.add_argument("--seed", type=int, default=0, help="seed for retry jitter")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--engine", choices=ENGINES, default=None,
                   help="where compute runs: local (default) or ray, a Ray cluster (docs/ray.md); "
                        "resume defaults to the engine the run started with")
    p.add_argument("--address", metavar="HOST:PORT", help="the Ray cluster's head (default: $RAY_ADDRESS)")
    p.add_argument("--no-measure", action="store_true",
                   help="do not time modules' candidate builds on a first load here; run each variant's default")
    add_trust_arg(p)


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("run", help="run a bundle", description="Run a planc bundle on this host.")
    p.add_argument("bundle", help="NAME.planb or a bundle directory")
    p.add_argument("--input", "-i", action="append", default=[], metavar="NAME=FILE.npy",
                   help="an input value (repeat for each input)")
    p.add_argument("--run-dir", metavar="ROOT", default="planrt-runs",
                   help="where run directories (journal, values, audit log) go (default: planrt-runs)")
    p.add_argument("--run-id", help="name of the run directory (default: time + random suffix)")
    p.add_argument("--no-journal", action="store_true", help="run without a run directory (not resumable)")
    p.add_argument("--sha256", metavar="HEX", help="refuse any bundle but the one with this sha256 (the digest "
                   "`planc compile` prints; 12 or more hex digits)")
    _common(p)
    p.set_defaults(handler=run)
    return p


def add_resume_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("resume", help="resume a crashed or stopped run",
                       description="Resume a run: nothing that finished is redone, no tool call is repeated.")
    p.add_argument("run_dir", help="the run directory (ROOT/RUN_ID)")
    p.add_argument("--bundle", help="the bundle (default: the one the run was started with)")
    _common(p)
    p.set_defaults(handler=resume)
    return p


def _fail(msg: str) -> int:
    print(f"planrt: error: {msg}", file=sys.stderr)
    return 1


def _inputs(specs: list[str]) -> dict[str, np.ndarray]:
    out = {}
    for spec in specs:
        name, sep, file = spec.partition("=")
        if not sep or not name or not file:
            raise InputError(f"bad --input '{spec}': expected NAME=FILE.npy")
        try:
            out[name] = np.load(file, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise InputError(f"input '{name}': cannot read '{file}' as a .npy file: {e}") from None
    return out


def _engine(args: argparse.Namespace, run_dir: RunDir | None = None) -> tuple[str, str | None]:
    """The engine and cluster address: the flags, else (resume) what the run started with."""
    recorded: dict[str, Any] = run_dir.engine if run_dir is not None else {}
    engine = args.engine or recorded.get("engine") or "local"
    return engine, args.address or (recorded.get("address") if engine == recorded.get("engine") else None)


def _gates(args: argparse.Namespace) -> Any:
    if args.auto_approve:
        return AutoApprove()
    if args.decisions:
        return DecisionsDir(args.decisions)
    return Interactive()


def _plan(bundle: Any, args: argparse.Namespace, engine: str, address: str | None) -> Plan:
    """The plan with this command's settings: the one RunConfig is built inside it."""
    return Plan(bundle, gates=_gates(args), engine=engine, address=address, seed=args.seed, concurrency=1,
                measure=not args.no_measure)


def _report(args: argparse.Namespace, plan: Plan, result: Result) -> int:
    engine = plan.runner.engine
    outputs = {k: o.value for k, o in result.outputs.items()}
    summary = {
        "status": result.status.value, "error": result.error, "rejected_by": result.rejected_by,
        "run_dir": str(result.run_dir) if result.run_dir else None, "variants": plan.variants,
        **({"placement": engine.placement()} if engine is not None else {}),
        "iterations": dict(result.iterations), "skipped": list(result.skipped),
        "task_seconds": {k: round(v, 6) for k, v in sorted(result.task_seconds.items())},
        "outputs": {k: _describe(v) for k, v in outputs.items()},
    }
    if args.output_dir:
        out = Path(args.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        for name, v in outputs.items():
            if isinstance(v, np.ndarray):
                np.save(out / f"{name}.npy", v)
            else:
                (out / f"{name}.json").write_text(json.dumps(v))
        (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    if args.trace and result.trace is not None:
        result.trace.write(args.trace)
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        print(f"status: {summary['status']}" + (f" ({result.error})" if result.error else ""))
        for k, v in summary["outputs"].items():
            print(f"  {k} = {v}")
        if result.run_dir:
            print(f"run: {result.run_dir}")
    return 0 if result.status.value != "failed" else 1


def _describe(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return v.tolist() if v.size <= 8 else f"{v.dtype}{list(v.shape)} (mean {float(np.mean(v)):.6g})"
    return v


@contextlib.contextmanager
def _stdout_for(engine: str) -> Iterator[Callable[[], Any]]:
    """Ray's driver prints cluster notices (a node died) on stdout: with the Ray engine they go
    to stderr, and planrt's own output (the summary, --json) stays alone on stdout."""
    if engine == "local":
        yield contextlib.nullcontext
        return
    real = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        yield lambda: contextlib.redirect_stdout(real)


def run(args: argparse.Namespace) -> int:
    try:
        trust = trust_from(args)
        bundle = load_bundle(args.bundle, sha256=args.sha256, trust=trust)
        not_checked(bundle, trust)
        inputs = _inputs(args.input)
        root = None if args.no_journal else Path(args.run_dir)
        engine, address = _engine(args)
        with _stdout_for(engine) as own_stdout:
            plan = _plan(bundle, args, engine, address)
            try:
                result = plan.run(inputs, journal=root, request_id=args.run_id, trace=bool(args.trace))
                with own_stdout():
                    return _report(args, plan, result)
            finally:
                plan.close()
    except (BundleError, InputError, ModuleError, NoVariantError, HostSpecError, JournalError, ClusterError) as e:
        return _fail(str(e))
    except OSError as e:  # the run directory or output directory cannot be written (disk full, read-only)
        return _fail(f"{e}; a run that started can be continued with `planrt resume` once that is fixed")


def resume(args: argparse.Namespace) -> int:
    try:
        with RunDir.open(args.run_dir) as run_dir:  # what the run recorded: its bundle and engine
            recorded_bundle, recorded_sha256, recorded = run_dir.bundle_path, run_dir.bundle_sha256, run_dir
    except (JournalError, OSError) as e:
        return _fail(str(e))
    try:
        path = args.bundle or recorded_bundle
        if not path:
            return _fail(f"run {args.run_dir} does not record its bundle; name it with --bundle")
        trust = trust_from(args)  # the run's own bundle, or none; with trust, still signed by a trusted key
        bundle = load_bundle(path, sha256=recorded_sha256 or None, trust=trust)
        not_checked(bundle, trust)
        engine, address = _engine(args, recorded)
        with _stdout_for(engine) as own_stdout:
            plan = _plan(bundle, args, engine, address)
            try:
                result = plan.resume(args.run_dir, trace=bool(args.trace))
                with own_stdout():
                    return _report(args, plan, result)
            finally:
                plan.close()
    except (BundleError, InputError, ModuleError, NoVariantError, HostSpecError, JournalError, ClusterError,
            OSError) as e:
        return _fail(str(e))
