"""`planc explain FILE`: the optimizer's groups, placement and predicted timeline, with a Gantt chart."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from planc.compiler.bundle.build import BuildOptions
from planc.compiler.commands.build import report_errors
from planc.compiler.commands.compile import opt_time_arg
from planc.compiler.costs.profiles import ProfileError
from planc.compiler.explain.report import explain_plan, format_explanation
from planc.compiler.pipeline import PassCrash
from planc.compiler.scheduling import Method
from planc.compiler.scheduling.problem import ScheduleInputError

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "explain", help="show how a plan was merged, placed and scheduled, with a Gantt chart",
        description="Optimize one plan for a deployment and print its groups (one compiled module each, "
                    "with predicted seconds on every device), the placement, the predicted timeline with "
                    "energy per task, and the totals beside HEFT's makespan. Optionally draws the schedule "
                    "as a Gantt chart (PNG and SVG). Exits 1 after a diagnostic.")
    p.add_argument("file", metavar="FILE", help="the .plan file")
    p.add_argument("--plan", metavar="NAME", help="the plan to explain (needed when the file has several)")
    p.add_argument("--deploy", default="", metavar="NAME|FILE[:NAME]",
                   help="deployment to optimize for (default: one matching the plan's targets)")
    p.add_argument("--profile", default="", metavar="TUNED.toml", help="a tuned profile from `planc tune`")
    p.add_argument("--method", default="auto", help="scheduler: auto, cpsat, ours, exact, heft, peft, greedy")
    p.add_argument("--opt-time", type=opt_time_arg, default=None, metavar="SECONDS",
                   help="the scheduler's constraint-solver budget in deterministic seconds (default: scaled "
                        "by plan size)")
    p.add_argument("--bundle", type=Path, metavar="NAME.planb",
                   help="also show, per module and target, the candidate builds this plan's bundle carries, "
                        "their measured times and the choice (planc compile --candidates)")
    p.add_argument("-o", "--output", type=Path, metavar="PREFIX",
                   help="write the Gantt chart to PREFIX.png and PREFIX.svg")
    p.add_argument("--png", type=Path, metavar="FILE", help="write the Gantt chart as PNG here")
    p.add_argument("--svg", type=Path, metavar="FILE", help="write the Gantt chart as SVG here")
    p.add_argument("--json", action="store_true", help="print the explanation as JSON")
    return p


def run(args: argparse.Namespace) -> int:
    if args.output is not None and (args.png is not None or args.svg is not None):
        print("planc: error: give either -o PREFIX or --png/--svg, not both", file=sys.stderr)
        return 2
    return report_errors(args.file, lambda: _unwrapped(args))


def _unwrapped(args: argparse.Namespace) -> int:
    # A bad deployment or one with no device for the plan surfaces inside the merge or
    # schedule pass, which reports it as a crash; it is the user's input, so say so plainly.
    try:
        return _explain(args)
    except PassCrash as e:
        cause = e.__cause__
        if isinstance(cause, ProfileError):
            raise cause from None
        if isinstance(cause, ScheduleInputError):
            raise ValueError(  # noqa: TRY004 - reported as bad input, like every ValueError here
                f"cannot schedule plan on deployment '{args.deploy or '(default)'}': {cause}; "
                f"does the deployment have a device for one of the plan's targets?") from None
        raise


def _explain(args: argparse.Namespace) -> int:
    method = Method.parse(args.method).value
    options = BuildOptions(deploy=args.deploy, tuned=args.profile, method=method, opt_time=args.opt_time)
    e = explain_plan(args.file, plan=args.plan, options=options)
    png, svg = args.png, args.svg
    if args.output is not None:
        png, svg = (args.output.with_name(f"{args.output.name}.{ext}") for ext in ("png", "svg"))
    written: tuple[Path, ...] = ()
    if png is not None or svg is not None:
        from planc.compiler.explain.gantt import write_gantt  # matplotlib only when a chart is asked for

        try:
            written = write_gantt(e, png=png, svg=svg)
        except OSError as err:
            print(f"planc: error: cannot write the chart: {err}", file=sys.stderr)
            return 1
    if args.json:
        print(json.dumps({**e.to_json(), "charts": [str(p) for p in written]}, indent=1, sort_keys=True, allow_nan=False))
    else:
        sys.stdout.write(format_explanation(e))
        if args.bundle is not None:
            sys.stdout.write(_builds(args.bundle))
    for p in written:
        print(f"wrote {p}", file=sys.stderr)
    return 0


def _builds(path: Path) -> str:
    """The bundle's candidate builds per module and target, with the measured choice."""
    from planc.runtime.bundle.loader import load_bundle, summarize
    from planc.runtime.bundle.summary import format_candidates

    bundle = load_bundle(path)
    lines = [f"\nbuilds in {path}"]
    for name, mod in summarize(bundle)["modules"].items():
        for target, var in mod["variants"].items():
            cands = format_candidates(var, indent="    ")
            lines += [f"  {name} {target}:" + ("" if cands else " one build (plain)")] + cands
    for dep, s in (bundle.manifest.get("schedules") or {}).items():
        if isinstance(s, dict) and s.get("measured") and isinstance(s.get("estimated_makespan"), (int, float)):
            times = ", ".join(f"{m} {t} {sec * 1e3:.3f} ms" for m, by in s["measured"].items() for t, sec in by.items())
            lines.append(f"  schedule on {dep} with the chosen builds' measured times ({times}): "
                         f"makespan {s['makespan'] * 1e3:.3f} ms (cost model estimated "
                         f"{s['estimated_makespan'] * 1e3:.3f} ms)")
    return "\n".join(lines) + "\n"
