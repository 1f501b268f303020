"""`planc tune BUNDLE -o PROFILE`: time the bundle's modules here, fit the cost model, save the result."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from pathlib import Path
from typing import Any

from planc.compiler.codegen.compile import CompileErrors
from planc.compiler.codegen.targets import parse_targets
from planc.compiler.costs.profiles import Profile, ProfileError, load_profile
from planc.compiler.costs.tuned_model import Tuning, load_tuning
from planc.compiler.pipeline import PassFailed
from planc.compiler.tuning.crossover import crossover_cases, crossover_flops, with_crossover
from planc.compiler.tuning.fit import FitResult, base_model, direct, leave_one_out
from planc.compiler.tuning.probes import probe_cases
from planc.compiler.tuning.tune import (
    Measurement,
    Report,
    TaskTimes,
    TuneError,
    bundle_cases,
    bundle_facts,
    fit,
    format_changes,
    format_report,
    measure,
    plot,
    read_traces,
    report,
    tool_latencies,
    trace_measurements,
)
from planc.dsl.diagnostics import DiagnosticError, render_all
from planc.runtime.bundle.format import BundleError
from planc.runtime.bundle.loader import load_bundle
from planc.runtime.host.detect import NoVariantError, detect

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "tune", help="measure a bundle's modules on this host and fit the cost model to them",
        description="Time every module variant of BUNDLE that this host can run (median and spread over "
                    "--repeat runs after --warmup, fresh inputs of the declared types each run), read task "
                    "and tool times from planrt traces, fit each device kind's peak, bandwidth, dispatch "
                    "overhead, per-dispatch cost, cache and DRAM bandwidth, vector rate and how compute and memory "
                    "combine (least squares on log time), measure where local-task beats local-sync, and write a tuned profile for "
                    "`planc compile --profile` and `planc explain --profile`.")
    p.add_argument("bundle", metavar="BUNDLE", help="a bundle from `planc compile -o NAME.planb`")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="PROFILE",
                   help="the tuned profile to write")
    p.add_argument("--repeat", type=int, default=20, metavar="N",
                   help="timed runs per module variant (default 20)")
    p.add_argument("--warmup", type=int, default=3, metavar="W", help="untimed runs first (default 3)")
    p.add_argument("--rounds", type=int, default=1, metavar="R",
                   help="split the timed runs over R passes over all modules (default 1)")
    p.add_argument("--trace", type=Path, action="append", default=[], metavar="FILE",
                   help="a trace from `planrt run --trace FILE` (repeatable): task and tool times")
    p.add_argument("--source", type=Path, metavar="FILE.plan",
                   help="the plan the bundle was built from (default: the manifest's source file next to it)")
    p.add_argument("--deploy", default="", metavar="NAME|FILE[:NAME]",
                   help="the deployment profile the bundle was optimized with (its device kinds are the "
                        "'before' numbers; default: the shipped profile)")
    p.add_argument("--profile", default="", metavar="TUNED.toml", help="a tuned profile to update")
    p.add_argument("--target", default="", metavar="T1,T2", help="measure only these targets")
    p.add_argument("--no-probes", action="store_true",
                   help="time only the bundle's modules (by default planc tune adds small probe modules, "
                        "compiled through the cache, so dispatch, bandwidth and peak are all seen)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    p.add_argument("--plot", type=Path, metavar="FILE.png", help="write a predicted-vs-measured scatter plot")
    p.add_argument("--json", action="store_true", help="print a JSON summary instead of the tables")
    return p


def run(args: argparse.Namespace) -> int:
    try:
        return _tune(args)
    except (DiagnosticError, PassFailed) as e:
        print(render_all(e.diagnostics, {}), file=sys.stderr)
        return 1
    except (BundleError, TuneError, ProfileError, NoVariantError, CompileErrors, OSError, ValueError) as e:
        print(f"planc: error: {e}", file=sys.stderr)
        return 1


def _tune(args: argparse.Namespace) -> int:
    bundle = load_bundle(args.bundle)
    profile = load_profile().select(args.deploy)[0] if args.deploy else load_profile()
    previous = load_tuning(args.profile) if args.profile else None
    targets = tuple(t.value for t in parse_targets(args.target)) if args.target else ()
    host = detect()
    facts = bundle_facts(bundle.manifest, Path(bundle.path), args.source)
    cases = bundle_cases(bundle, host, facts=facts, targets=targets)
    times = read_traces(args.trace, bundle.manifest)
    if not cases and not times:
        raise TuneError(f"no module variant of {args.bundle} can run on this host and no trace was given")
    xover: tuple = ()
    if not args.no_probes:
        xover = crossover_cases(sorted({c.target for c in cases}))
        cases += probe_cases(sorted({c.target for c in cases}))
    measured = measure(cases, repeat=args.repeat, warmup=args.warmup, rounds=args.rounds, seed=args.seed)
    measured = tuple(direct(measured + trace_measurements(times, bundle.manifest, host, facts)))
    result = fit(measured, profile, tools=tool_latencies(times), previous=previous)
    if xover:  # timed apart: the thread pool's runs must not disturb the fit's
        result = with_crossover(result, crossover_flops(
            measure(xover, repeat=max(5, args.repeat // 2), warmup=args.warmup, seed=args.seed)))
    before = {k: b for k in sorted({m.target for m in measured}) if (b := base_model(profile, k, previous))}
    rep = report(measured, before, result, leave_one_out(measured, profile, previous=previous))
    args.output.write_text(result.tuning.to_toml(), encoding="utf-8")
    if args.plot is not None:
        plot(rep, args.plot, title=f"planc tune: {bundle.manifest.get('plan', '')} on this host")
    if args.json:
        print(json.dumps(_json(args, measured, result, rep, times), indent=2))
        return 0
    print(_header(cases, args, bundle.manifest, profile))
    print(format_changes(result))
    print()
    print(format_report(rep))
    if times:
        print()
        print(_trace_table(times))
    print(f"\nwrote {args.output}" + (f" and {args.plot}" if args.plot else ""))
    return 0


def _header(cases, args: argparse.Namespace, manifest: dict[str, Any], profile: Profile) -> str:
    modules = sorted({c.module for c in cases if c.source != "probe"})
    probes = sorted({c.module for c in cases if c.source == "probe"})
    targets = sorted({c.target for c in cases})
    line = (f"measured {len(cases)} module variants ({len(modules)} modules + {len(probes)} probes x "
            f"{', '.join(targets) or 'no target'}), "
            f"{args.repeat} runs each after {args.warmup} warm-ups; "
            f"before = {', '.join(Path(s).name for s in profile.sources)}")
    used = [p for p in (manifest.get("cost_model") or {}).get("profiles", [])[1:] if p]
    given = {Path(s).name for s in profile.sources}
    missing = [p for p in used if p not in given]
    if missing:
        line += (f"\nnote: the bundle was optimized with {', '.join(missing)}; "
                 "pass it as --deploy to compare against it")
    return line


def _trace_table(times: tuple[TaskTimes, ...]) -> str:
    width = max(4, *(len(t.task) for t in times))
    lines = [f"{'task':<{width}}  {'kind':<8} {'tool':<12} {'runs':>5} {'median ms':>10}"]
    for t in times:
        lines.append(f"{t.task:<{width}}  {t.kind:<8} {t.tool or '-':<12} {len(t.durations):>5} "
                     f"{t.median * 1e3:>10.3f}")
    return "\n".join(lines)


def _finite(x: float) -> float | None:
    return None if math.isnan(x) else x


def _json(args: argparse.Namespace, measured: tuple[Measurement, ...], result: FitResult, rep: Report,
          times: tuple[TaskTimes, ...]) -> dict[str, Any]:
    def spec(k) -> dict[str, Any]:
        s = k.spec
        return {"peak_gflops": {dt: v / 1e9 for dt, v in sorted(s.peak_flops.items())},
                "mem_bandwidth_gbs": s.mem_bandwidth / 1e9, "dispatch_us": s.dispatch_overhead * 1e6,
                "serial": k.serial, **({
                    "per_dispatch_us": k.full.per_dispatch * 1e6, "cache_bandwidth_gbs": k.full.cache_bandwidth / 1e9,
                    "llc_mb": k.full.llc_bytes / (1 << 20), "blend": k.full.blend, "vector_rate": k.full.vector_rate,
                } if k.full is not None else {})}

    tuning: Tuning = result.tuning
    return {
        "profile": str(args.output),
        "devices": {k.kind: {"modules": k.modules, "rms_log": k.rms_log, "combination": k.combination,
                             "before": spec(k.before), "after": spec(k.after),
                             "local_task_gflop": tuning.devices[k.kind].local_task_flops / 1e9}
                    for k in result.kinds},
        "skipped": {kind: why for kind, why in result.skipped},
        "modules": [dataclasses.asdict(r) for r in rep.rows],
        "summary": {f"{stat}_{which}": _finite(getattr(rep, stat)(which))
                    for stat in ("mape", "tau") for which in ("before", "after", "held_out")},
        "tools": dict(tuning.tools),
        "tasks": [{"task": t.task, "kind": t.kind, "tool": t.tool, "runs": len(t.durations),
                   "median_s": t.median} for t in times],
        "measurements": len(measured),
    }
