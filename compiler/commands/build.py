"""`planc compile --emit schedule|mlir|bundle`: the optimizing and code-generating half of compile."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from planc.compiler.bundle.build import BuildOptions, build_bundle, optimize
from planc.compiler.codegen.compile import CompileErrors
from planc.compiler.codegen.lower import lower_all
from planc.compiler.codegen.targets import parse_targets
from planc.compiler.costs.profiles import ProfileError
from planc.compiler.explain.report import bound_line
from planc.compiler.hlo.stablehlo import StableHLOError
from planc.compiler.pipeline import PassFailed, PipelineError, PipelineOptions
from planc.dsl.diagnostics import DiagnosticError, render_all

__all__ = ["format_schedule", "options_from_args", "report_errors", "run_build"]


def options_from_args(args: argparse.Namespace) -> BuildOptions:
    targets = tuple(t.value for t in parse_targets(args.target)) if getattr(args, "target", "") else ()
    return BuildOptions(deploy=args.deploy, tuned=args.profile, targets=targets, method=args.method,
                        opt_time=getattr(args, "opt_time", None),
                        cache=not args.no_cache, jobs=args.jobs, save_temps=args.save_temps,
                        candidates=getattr(args, "candidates", "none"), measure=not getattr(args, "no_measure", False),
                        pipeline=PipelineOptions(verify_each=True, time_passes=args.time_passes,
                                                 dump_dir=args.dump_dir))


def format_schedule(graph) -> str:
    """The predicted timeline: one row per task with device, start, finish and energy."""
    s = graph.info.schedule
    if s is None:
        return "(no schedule)\n"
    kinds = dict(s.devices)
    devices = ", ".join(f"{n}={k}" for n, k in s.devices)
    rows = [f"plan {graph.info.name} on {s.deployment} ({devices}), objective {s.objective}, method {s.method}",
            f"{'task':<16} {'device':<14} {'kind':<14} {'start':>12} {'finish':>12}"]
    for slot in sorted(s.slots, key=lambda x: (x.start, x.device, x.task)):
        if slot.finish == slot.start and slot.task.startswith("<"):
            continue
        rows.append(f"{slot.task:<16} {slot.device:<14} {kinds[slot.device]:<14} "
                    f"{slot.start * 1e3:>10.3f}ms {slot.finish * 1e3:>10.3f}ms")
    ratio = s.makespan / s.heft_makespan if s.heft_makespan > 0 else 1.0
    rows.append(f"makespan {s.makespan * 1e3:.3f} ms (HEFT {s.heft_makespan * 1e3:.3f} ms, ratio {ratio:.3f}), "
                f"energy {s.energy:.4g} J, period {s.period * 1e3:.3f} ms")
    rows.append(bound_line(s))
    return "\n".join(rows) + "\n"


def _source(path: str) -> dict[str, str]:
    try:
        return {path: Path(path).read_text(encoding="utf-8", errors="replace")}
    except OSError:
        return {}


def report_errors(path: str, action: Callable[[], int]) -> int:
    """Runs `action`; bad input (diagnostics, pipeline, profile, lowering, IREE compile errors)
    is printed the way `planc compile` prints it and gives exit status 1."""
    try:
        return action()
    except (PassFailed, DiagnosticError) as e:
        print(render_all(e.diagnostics, _source(path)), file=sys.stderr)
        if isinstance(e, PassFailed):
            print(f"  = note: {e.context}", file=sys.stderr)
        return 1
    except CompileErrors as e:
        print(f"planc: error: {e}", file=sys.stderr)
        return 1
    except (PipelineError, ProfileError, StableHLOError, ValueError) as e:
        print(f"planc: error: {e}", file=sys.stderr)
        return 1


def run_build(args: argparse.Namespace) -> int:
    return report_errors(args.file, lambda: _run_build(args))


def _signer(args: argparse.Namespace) -> Callable[[Path], None] | None:
    """`--sign KEY`: the key is read before the compile (a bad key fails in a second, not minutes)."""
    if getattr(args, "sign", None) is None:
        return None
    from planc.compiler.commands.sign import report_signed, sign_with, unlock

    unlock(args.sign)
    return lambda path: report_signed(sign_with(path, args.sign))


def _run_build(args: argparse.Namespace) -> int:
    options = options_from_args(args)
    if args.emit == "bundle":
        if args.output is None:
            print("planc: error: --emit bundle needs -o NAME.planb (or -o DIR/)", file=sys.stderr)
            return 2
        signer = _signer(args)
        res = build_bundle(args.file, args.output, plan=args.plan, options=options)
        n = len(res.manifest["modules"])
        print(f"wrote {res.path} ({n} module{'s' * (n != 1)} x {len(res.manifest['targets'])} targets, "
              f"sha256 {res.sha256[:12]})", file=sys.stderr)
        if signer is not None:
            signer(res.path)
        return 0
    result = optimize(args.file, plan=args.plan, options=options)
    if args.emit == "schedule":
        text = format_schedule(result.graph)
    else:
        text = "\n".join(f"// module {m.name}: {', '.join(m.members)}\n{m.mlir}" for m in lower_all(result.graph))
    if args.output is not None:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0
