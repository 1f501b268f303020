"""`planc compile FILE`: parse, check and run the pass pipeline; print the AST or the IR."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from planc.compiler.codegen.candidates import DEFAULT_SETS, FLAG_SETS, parse_sets
from planc.compiler.ir.printer import print_ir
from planc.compiler.pipeline import (
    DEFAULT_PIPELINE,
    PassFailed,
    PipelineError,
    PipelineOptions,
    compile_file,
    front_check,
    parse_pipeline,
)
from planc.dsl import ast as A
from planc.dsl.diagnostics import Diagnostic, DiagnosticError, render_all
from planc.dsl.parser import parse_file

__all__ = ["add_parser", "dump_ast", "opt_time_arg", "run"]

EMITS = ("ast", "ir", "schedule", "mlir", "bundle")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "compile", help="compile a .plan file",
        description="Parse and check a .plan file, run the pass pipeline on each of its plans and emit "
                    "the result. Diagnostics go to stderr; exits 1 after an error.")
    p.add_argument("file", metavar="FILE", help="the .plan file")
    p.add_argument("--emit", choices=EMITS, default=None,
                   help="what to produce (default: bundle when -o names a .planb file or a directory, else ir)")
    p.add_argument("-p", "--pipeline", default=DEFAULT_PIPELINE, metavar="PIPELINE",
                   help=f'passes to run, e.g. "build,verify,merge{{max-group=4}}" (default: {DEFAULT_PIPELINE})')
    p.add_argument("--plan", metavar="NAME", help="compile only this plan of the file")
    p.add_argument("--print-ir-after", action="append", default=[], metavar="PASS|all",
                   help="print the IR to stderr after this pass (repeatable, or comma-separated)")
    p.add_argument("--verify-each", action="store_true", help="run verify after every pass")
    p.add_argument("--time-passes", action="store_true", help="print a table of pass timings to stderr")
    p.add_argument("--dump-dir", type=Path, metavar="DIR",
                   help="write the IR after each pass to DIR/PLAN/NN-PASS.ir")
    p.add_argument("-o", "--output", type=Path, metavar="OUT", help="write the output here, not to stdout")
    g = p.add_argument_group("optimization and code generation (--emit schedule|mlir|bundle)")
    g.add_argument("--deploy", default="", metavar="NAME|FILE[:NAME]",
                   help="deployment to optimize for (default: one matching the plan's targets)")
    g.add_argument("--profile", default="", metavar="TUNED.toml", help="a tuned profile from `planc tune`")
    g.add_argument("--target", default="", metavar="T1,T2", help="override the plan's targets")
    g.add_argument("--method", default="auto", help="scheduler: auto, cpsat, ours, exact, heft, peft, greedy")
    g.add_argument("--opt-time", type=opt_time_arg, default=None, metavar="SECONDS",
                   help="the scheduler's constraint-solver budget in deterministic seconds (reproducible, "
                        "not wall time; default: 0.1 + 0.004 per task, at most 1)")
    g.add_argument("--no-cache", action="store_true", help="do not use the compiled-module cache")
    g.add_argument("-j", "--jobs", type=int, default=None, help="parallel IREE compiles (default: cores)")
    g.add_argument("--save-temps", metavar="DIR", help="keep IREE's inputs, commands and dumps under DIR")
    g.add_argument("--candidates", default="none", type=candidates_arg, metavar="auto|none|SET,...",
                   help="also build each CPU module with these IREE flag sets (auto: "
                        f"{','.join(DEFAULT_SETS)}; known: {','.join(FLAG_SETS)}) and keep the fastest "
                        "that matches plain, measured here for this host's target, else by planrt on "
                        "its first load (default: none)")
    g.add_argument("--no-measure", action="store_true",
                   help="with --candidates: measure nothing at compile time; every target carries its candidates")
    g.add_argument("--sign", type=Path, metavar="KEY.pem",
                   help="sign the bundle with this PEM private key (ECDSA P-256 or Ed25519; `planc sign`)")
    return p


def candidates_arg(text: str) -> str:
    """`--candidates` checked against the flag-set table."""
    try:
        parse_sets(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def opt_time_arg(text: str) -> float:
    """`--opt-time` as a number of seconds >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got '{text}'") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number of seconds >= 0, got '{text}'")
    return value


def _source(path: str) -> dict[str, str]:
    try:
        return {path: Path(path).read_text(encoding="utf-8", errors="replace")}
    except OSError:
        return {}


def _report(diags: tuple[Diagnostic, ...] | list[Diagnostic], path: str, context: str = "") -> None:
    if diags:
        print(render_all(diags, _source(path)), file=sys.stderr)
    if context:
        print(f"  = note: {context}", file=sys.stderr)
    errors = sum(d.is_error for d in diags)
    if errors:
        print(f"planc: {errors} error{'s' * (errors != 1)}, compilation stopped", file=sys.stderr)


def _emit(text: str, out: Path | None) -> None:
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")


def _print_after(values: list[str], names: list[str]) -> frozenset[str]:
    wanted = {v.strip() for arg in values for v in arg.split(",") if v.strip()}
    unknown = sorted(wanted - {"all", *names})
    if unknown:
        raise PipelineError(f"--print-ir-after: '{unknown[0]}' is not in the pipeline, expected one of: "
                            f"all, {', '.join(dict.fromkeys(names))}")
    return frozenset(wanted)


def run(args: argparse.Namespace) -> int:
    if args.emit is None:
        out = args.output
        args.emit = "bundle" if out is not None and (out.suffix == ".planb" or out.is_dir()) else "ir"
    if args.emit in ("schedule", "mlir", "bundle"):
        from planc.compiler.commands.build import run_build

        return run_build(args)
    try:
        if args.emit == "ast":
            return _run_ast(args)
        passes = parse_pipeline(args.pipeline)
        options = PipelineOptions(verify_each=args.verify_each, time_passes=args.time_passes,
                                  print_ir_after=_print_after(args.print_ir_after, [p.name for p in passes]),
                                  dump_dir=args.dump_dir)
        results = compile_file(args.file, passes, options, plan=args.plan)
    except PipelineError as e:
        print(f"planc: error: {e}", file=sys.stderr)
        return 2
    except PassFailed as e:
        _report(e.diagnostics, args.file, e.context)
        return 1
    except DiagnosticError as e:
        _report(e.diagnostics, args.file)
        return 1
    _report([d for r in results for d in r.diagnostics], args.file)
    _emit("\n".join(print_ir(r.graph) for r in results), args.output)
    return 0


def _run_ast(args: argparse.Namespace) -> int:
    module = parse_file(args.file)
    diags = front_check(module)
    _report(diags, args.file)
    if any(d.is_error for d in diags):
        return 1
    plans = tuple(p for p in module.plans if args.plan is None or p.name.name == args.plan)
    _emit("\n".join(dump_ast(dataclasses.replace(module, plans=plans))) + "\n", args.output)
    return 0


# -- a readable AST dump -------------------------------------------------------------------
def _leaf(node: Any) -> str | None:
    if isinstance(node, A.Ident):
        return node.name
    if isinstance(node, (A.Ref, A.Duration, A.TensorType)):
        return str(node)
    if isinstance(node, A.Number):
        return repr(node.value)
    if isinstance(node, A.String):
        return json.dumps(node.value)
    if isinstance(node, (str, int, float, bool)):
        return repr(node) if isinstance(node, str) else str(node)
    return None


def _where(node: Any) -> str:
    span = getattr(node, "span", None)
    return f"  @{span.line}:{span.col}" if span is not None and span.line else ""


def dump_ast(node: Any, depth: int = 0) -> list[str]:
    """One line per node with its position; leaves (names, refs, numbers, types) inline."""
    pad = "  " * depth
    if isinstance(node, A.Module):
        lines = [f"{pad}Module {node.file}"]
        for p in node.plans:
            lines += dump_ast(p, depth + 1)
        return lines
    lines = [f"{pad}{type(node).__name__}{_where(node)}"]
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        if f.name.endswith("span") or value is None or value == ():
            continue
        lines += _field(f.name, value, depth + 1)
    return lines


def _field(name: str, value: Any, depth: int) -> list[str]:
    pad = "  " * depth
    items = value if isinstance(value, tuple) else (value,)
    leaves = [_leaf(v) for v in items]
    if all(x is not None for x in leaves):
        return [f"{pad}{name}: {', '.join(leaves)}"]  # type: ignore[arg-type]
    lines = [f"{pad}{name}:"]
    for v, text in zip(items, leaves):
        lines += [f"{pad}  {text}"] if text is not None else dump_ast(v, depth + 1)
    return lines
