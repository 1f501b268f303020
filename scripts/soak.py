"""Reliability soak: fuzzed plans, tampered bundles, kill -9 and resume, faults in the run directory.

    python scripts/soak.py [--small] [--seed N] [--only frontend,bundles,crashes,faults]
                           [--frontend N] [--bundles N] [--crashes N] [--work DIR] [--json FILE]

The full campaign (docs/reliability.md has the command and the recorded counts) runs 100,000 mutated
plans, 10,000 tampered bundles and 100 crash points; `--small` runs a few hundred inputs in seconds
with a fixed seed, and is part of the test suite (tests/reliability). Exit status 1 when any promise
is broken; each broken promise is listed (with its input saved under the work directory).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import soak_tamper
from soak_bundles import run_bundles
from soak_crashes import PLANS, build, prepare, run_crashes
from soak_faults import run_faults
from soak_frontend import run_frontend

__all__ = ["main"]

STAGES = ("frontend", "bundles", "crashes", "faults")
FULL = {"frontend": 100_000, "bundles": 10_000, "crashes": 100}
SMALL = {"frontend": 300, "bundles": 130, "crashes": 2}
SMALL_PLANS = [("scripts/soak_plans/flaky/flaky.plan", "flaky")]  # no models: compiles without IREE


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="soak.py", description=__doc__.split("\n")[0])
    p.add_argument("--small", action="store_true", help="a few hundred inputs, one plan, seconds")
    p.add_argument("--seed", type=int, default=20)
    p.add_argument("--only", default=",".join(STAGES), help=f"comma-separated stages of: {', '.join(STAGES)}")
    for stage, n in FULL.items():
        p.add_argument(f"--{stage}", type=int, metavar="N", help=f"how many (default {n:,})")
    p.add_argument("--cli-sample", type=int, default=None, help="inputs also run through the real CLIs")
    p.add_argument("--work", metavar="DIR", help="bundles, runs and failing inputs go here (default: a temp dir)")
    p.add_argument("--json", metavar="FILE", help="write every count as JSON")
    p.add_argument("--trust", action="store_true",
                   help="bundles stage: sign the good bundles with a fresh key and load every tampered one with "
                        "only that key trusted (planrt --trust); the signature's own tamperers join")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    logging.basicConfig(level=logging.ERROR)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(only) - set(STAGES))
    if unknown:
        print(f"soak.py: unknown stage(s) {', '.join(unknown)}; expected: {', '.join(STAGES)}", file=sys.stderr)
        return 2
    if args.small:
        soak_tamper.BOMB_BYTES = 8 << 20
    counts = {k: getattr(args, k) or (SMALL if args.small else FULL)[k] for k in FULL}
    cli = args.cli_sample if args.cli_sample is not None else (4 if args.small else 100)
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        work = Path(args.work or tmp).resolve()
        work.mkdir(parents=True, exist_ok=True)
        results = _campaign(only, counts, cli, args, work)
    _table(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str) + "\n")
    return 0 if all(r["ok"] for r in results.values()) else 1


def _note(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _campaign(only: list[str], counts: dict[str, int], cli: int, args: argparse.Namespace,
              work: Path) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    os.environ.setdefault("PLANC_CACHE_DIR", str(work / "cache"))
    if "frontend" in only:
        r = run_frontend(counts["frontend"], args.seed, failures_dir=work / "failures" / "frontend",
                         cli_sample=cli, progress=_note)
        results["frontend"] = {"ok": r.ok, **r.to_json()}
        _note(f"frontend done in {r.seconds:.0f}s")
    bundles: dict[str, Path] = {}
    if {"bundles", "crashes", "faults"} & set(only):
        bundles = build(work / "plans", SMALL_PLANS if args.small else PLANS)
    if "bundles" in only:
        goods, trust = sorted(bundles.values()), None
        if args.trust:
            goods, trust = _signed(goods, work / "signed")
        r2 = run_bundles(goods, counts["bundles"], args.seed, cli_sample=max(1, cli // 4), progress=_note,
                         trust=trust)
        results["bundles"] = {"ok": r2.ok, **r2.to_json()}
        _note(f"bundles done in {r2.seconds:.0f}s")
    if "crashes" in only:
        cases = prepare(work / "plans", bundles)
        r3 = run_crashes(cases, counts["crashes"], args.seed, work / "crashes", progress=_note)
        results["crashes"] = {"ok": r3.ok, **r3.to_json()}
    if "faults" in only:
        flaky = bundles.get("flaky") or build(work / "plans", SMALL_PLANS)["flaky"]
        r4 = run_faults(flaky, work / "faults", args.seed, small=args.small)
        results["faults"] = {"ok": r4.ok, **r4.to_json()}
    return results


def _signed(goods: list[Path], out: Path) -> tuple[list[Path], list[Path]]:
    """Copies of the good bundles signed with a fresh key, and that key's public half."""
    import shutil

    from planc.compiler.bundle.sign import sign_bundle
    from soak_signed import make_keys

    priv, pub = make_keys(out / "keys")
    signed = []
    for g in goods:
        copy = out / g.name
        shutil.copyfile(g, copy)
        sign_bundle(copy, priv)
        signed.append(copy)
    return signed, [pub]


def _table(results: dict[str, dict[str, Any]]) -> None:
    rows = []
    if "frontend" in results:
        f = results["frontend"]
        rows.append(("front end: mutated plans", f["inputs"], (
            f"{f['tracebacks']} tracebacks, {f['hangs']} hangs, {f['broken']} broken; {f['round_trips']} "
            f"fmt->check round trips; slowest {f['max_seconds'] * 1000:.0f} ms CPU "
            f"({f['max_wall'] * 1000:.0f} ms wall); CLI {f['cli_files']} files, {f['cli_mismatches']} off")))
    if "bundles" in results:
        b = results["bundles"]
        rows.append(("bundles: tampered", b["bundles"], (
            f"{b['rejected_total']} refused by verification, {sum(b['accepted_consistent'].values())} "
            f"consistent re-hashes and {sum(b['same_content'].values())} zip-metadata-only changes loaded "
            f"(their runs: {b['runs']}); pinned: {b['pinned_rejected']} refused; {len(b['failures'])} broken; "
            f"CLI runs {b['cli_runs']}")))
        if b.get("trusted"):
            rows.append(("  with --trust", b["bundles"], (
                f"{b['rejected_total']} refused ({b['rejected_total'] / max(1, b['bundles']):.2%}); re-hashed "
                f"(consistent) edits: {sum(b['consistent_refused'].values())} of {b['consistent_total']} refused; "
                f"{sum(b['same_content'].values())} loaded with the signed content unchanged (zip layout only)")))
    if "crashes" in results:
        c = results["crashes"]
        rows.append(("crashes: kill -9 + resume", c["trials"], (
            f"{c['resumed']} resumed, {c['identical']} identical outputs, {c['exactly_once']} side effects "
            f"exactly once; {c['phases']}")))
    if "faults" in results:
        fl = results["faults"]
        rows.append(("faults: disk full, read-only", fl["cases"], (
            f"{fl['clear_errors']} clear errors, {fl['resumed']} resumed after the fault; "
            f"{len(fl['failures'])} broken; {fl['notes']}")))
    print(f"{'campaign':<30} {'count':>8}  result")
    for name, n, text in rows:
        print(f"{name:<30} {n:>8}  {text}")
    for stage, r in results.items():
        for f in r.get("failures", [])[:10]:
            print(f"BROKEN {stage}: {json.dumps(f)[:600]}")


if __name__ == "__main__":
    sys.exit(main())
