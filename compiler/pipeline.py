"""Runs pass pipelines written as strings (`build,verify,merge{max-group=4}`), with MLIR-style instrumentation."""

from __future__ import annotations

import dataclasses
import gc
import logging
import re
import sys
import time
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from planc.compiler.ir.graph import PlanGraph
from planc.compiler.ir.printer import print_ir
from planc.compiler.passes import PASSES, Pass, Verify
from planc.dsl import ast as A
from planc.dsl.diagnostics import Diagnostic, DiagnosticError
from planc.dsl.parser import parse_file

__all__ = [
    "DEFAULT_PIPELINE", "PassCrash", "PassFailed", "PassTiming", "PipelineError", "PipelineOptions",
    "PipelineResult", "compile_file", "format_timings", "front_check", "parse_pipeline", "run_pipeline",
]

log = logging.getLogger(__name__)

DEFAULT_PIPELINE = "build,verify,infer-types"
_ITEM = re.compile(r"\s*([A-Za-z][A-Za-z0-9_-]*)\s*(?:\{([^{}]*)\})?\s*\Z")


class PipelineError(ValueError):
    """A pipeline string that names an unknown pass or option, or passes in an impossible order."""


class PassFailed(DiagnosticError):
    """A pass (or the verifier run after one) found errors in the plan."""

    def __init__(self, diagnostics: Sequence[Diagnostic], pass_name: str, after: str | None) -> None:
        super().__init__(diagnostics)
        self.pass_name, self.after = pass_name, after

    @property
    def context(self) -> str:
        return f"in pass '{self.pass_name}'" + (f" (after '{self.after}')" if self.after else "")


class PassCrash(RuntimeError):
    """A pass raised something other than DiagnosticError: a compiler bug, with its context."""


# -- pipeline strings ----------------------------------------------------------------------
def _split(text: str) -> list[str]:
    items, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth < 0 or depth > 1:
            raise PipelineError(f"unbalanced braces in pipeline '{text}'")
        if ch == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    if depth:
        raise PipelineError(f"unbalanced braces in pipeline '{text}'")
    return [*items, text[start:]]


def _options(cls: type) -> dict[str, tuple[str, Any]]:
    """Pipeline-settable options of a pass: dashed name -> (field name, type)."""
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        if f.init and hints.get(f.name) in (int, float, bool, str):
            out[f.name.replace("_", "-")] = (f.name, hints[f.name])
    return out


def _convert(value: str, ty: Any, where: str) -> Any:
    if ty is bool:
        low = value.lower()
        if low in ("true", "1", "yes", "on", ""):
            return True
        if low in ("false", "0", "no", "off"):
            return False
        raise PipelineError(f"{where}: expected true or false, got '{value}'")
    try:
        return ty(value)
    except ValueError:
        raise PipelineError(f"{where}: expected {ty.__name__}, got '{value}'") from None


def parse_pipeline(text: str, registry: dict[str, type] | None = None) -> tuple[Pass, ...]:
    """`"build,verify,merge{max-group=4}"` -> pass instances; PipelineError names the problem."""
    registry = PASSES if registry is None else registry
    passes = []
    for item in _split(text):
        m = _ITEM.match(item)
        if not m:
            raise PipelineError(f"malformed pipeline item '{item.strip()}': expected NAME or NAME{{opt=value,...}}")
        name, body = m.group(1), m.group(2)
        if name not in registry:
            raise PipelineError(f"unknown pass '{name}', expected one of: {', '.join(sorted(registry))}")
        cls, known, kwargs = registry[name], _options(registry[name]), {}
        for opt in filter(str.strip, (body or "").split(",")):
            key, _, value = (s.strip() for s in opt.partition("="))
            if key not in known:
                listed = ", ".join(sorted(known)) or "(none)"
                raise PipelineError(f"unknown option '{key}' for pass '{name}', expected one of: {listed}")
            fname, ty = known[key]
            kwargs[fname] = _convert(value, ty, f"option '{key}' of pass '{name}'")
        passes.append(cls(**kwargs))
    return tuple(passes)


# -- running -------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class PipelineOptions:
    """Instrumentation, as iree-compile and mlir-opt spell it. `print_ir_after` holds pass
    names or "all"; IR dumps and the timing table go to `stream` (stderr by default)."""

    verify_each: bool = False
    print_ir_after: frozenset[str] = frozenset()
    time_passes: bool = False
    dump_dir: Path | None = None
    stream: TextIO | None = field(default=None, compare=False)


@dataclass(frozen=True)
class PassTiming:
    name: str
    seconds: float


@dataclass(frozen=True)
class PipelineResult:
    graph: PlanGraph
    timings: tuple[PassTiming, ...]
    diagnostics: tuple[Diagnostic, ...]  # warnings (errors raise)


def _run_one(p: Pass, graph: Any, after: str | None) -> PlanGraph:
    # A pass allocates many small acyclic records; the cycle collector only costs time there.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return p.run(graph)
    except DiagnosticError as e:
        raise PassFailed(e.diagnostics, p.name, after) from None
    except Exception as e:
        where = f"pass '{p.name}'" + (f" (after '{after}')" if after else "")
        raise PassCrash(f"internal error in {where}: {type(e).__name__}: {e}") from e
    finally:
        if collecting:
            gc.enable()


class _Instruments:
    def __init__(self, options: PipelineOptions, plan: str) -> None:
        self.o, self.plan = options, plan
        self.stream = options.stream or sys.stderr
        self.timings: list[PassTiming] = []

    def after_pass(self, index: int, name: str, graph: PlanGraph) -> None:
        if "all" in self.o.print_ir_after or name in self.o.print_ir_after:
            self.stream.write(f"// -----// IR Dump After {name} ({self.plan}) //----- //\n{print_ir(graph)}\n")
        if self.o.dump_dir is not None:
            folder = Path(self.o.dump_dir) / self.plan
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{index:02d}-{name}.ir").write_text(print_ir(graph), encoding="utf-8")


def run_pipeline(source: A.Plan | PlanGraph, passes: Sequence[Pass],
                 options: PipelineOptions | None = None) -> PipelineResult:
    """Runs `passes` in order; `build` must come first (and only first) when `source` is an AST
    Plan. Raises PassFailed for errors in the plan, PassCrash for bugs, PipelineError for a
    pipeline that cannot run."""
    options = options or PipelineOptions()
    _check_order(source, passes)
    plan = source.name.name if isinstance(source, A.Plan) else source.name
    inst = _Instruments(options, plan)
    current: Any = source
    after: str | None = None
    for index, p in enumerate(passes):
        start = time.perf_counter()
        current = _run_one(p, current, after)
        inst.timings.append(PassTiming(p.name, time.perf_counter() - start))
        if options.verify_each and p.name != Verify.name:
            start = time.perf_counter()
            current = _run_one(Verify(), current, p.name)
            inst.timings.append(PassTiming(f"{Verify.name} (after {p.name})", time.perf_counter() - start))
        inst.after_pass(index, p.name, current)
        after = p.name
    if not isinstance(current, PlanGraph):
        raise PipelineError("the pipeline produced no IR: start it with 'build'")
    if options.time_passes:
        inst.stream.write(format_timings(inst.timings, plan))
    return PipelineResult(current, tuple(inst.timings), current.diagnostics)


def _check_order(source: A.Plan | PlanGraph, passes: Sequence[Pass]) -> None:
    if not passes:
        raise PipelineError("empty pipeline")
    builds = [i for i, p in enumerate(passes) if p.name == "build"]
    if isinstance(source, A.Plan) and builds[:1] != [0]:
        raise PipelineError("a pipeline that starts from a .plan must begin with 'build'")
    if builds and builds != [0]:
        raise PipelineError("'build' can only be the first pass")
    if isinstance(source, PlanGraph) and builds:
        raise PipelineError("'build' starts from a .plan's AST, not from IR")


def format_timings(timings: Sequence[PassTiming], plan: str) -> str:
    """MLIR's --mlir-timing table: wall time per pass, share of the total."""
    total = sum(t.seconds for t in timings) or 1e-12
    rule = "===" + "-" * 73 + "==="
    lines = [rule, f"  ... Pass execution timing report ({plan}) ...".center(79).rstrip(), rule,
             f"  Total Execution Time: {total:.4f} seconds", "", "  ----Wall Time----  ----Name----"]
    for t in timings:
        lines.append(f"  {t.seconds:8.4f} ({100 * t.seconds / total:5.1f}%)  {t.name}")
    lines.append(f"  {total:8.4f} (100.0%)  Total")
    return "\n".join(lines) + "\n\n"


# -- the front: parse, check, then one pipeline per plan --------------------------------------
def front_check(module: A.Module) -> list[Diagnostic]:
    """The AST-level checks of planc.dsl.check when that module exists (name resolution)."""
    try:
        from planc.dsl.check import check  # type: ignore[import-not-found]
    except ModuleNotFoundError as e:
        if e.name != "planc.dsl.check":
            raise
        return []
    return list(check(module))


def compile_file(path: str | Path, passes: Sequence[Pass], options: PipelineOptions | None = None, *,
                 plan: str | None = None) -> list[PipelineResult]:
    """Parses a .plan file, checks it, and runs the pipeline on each plan (or the one named)."""
    module = parse_file(path)
    diags = front_check(module)
    if any(d.is_error for d in diags):
        raise DiagnosticError(diags)
    plans = [p for p in module.plans if plan is None or p.name.name == plan]
    if plan is not None and not plans:
        known = ", ".join(p.name.name for p in module.plans) or "(none)"
        raise PipelineError(f"no plan '{plan}' in {path}; it has: {known}")
    results = []
    for p in plans:
        r = run_pipeline(p, passes, options)
        results.append(dataclasses.replace(r, diagnostics=tuple(diags) + r.diagnostics))
        diags = []  # file-level warnings once
    return results
