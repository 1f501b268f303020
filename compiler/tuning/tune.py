"""`planc tune`'s typed API: measure module variants on this host, read planrt traces, fit, report."""

from __future__ import annotations

import json
import logging
import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from planc.compiler.costs.model import ComputeFacts
from planc.compiler.tuning.cases import Measurement, ModuleCase, TaskTimes, TensorSig, with_dispatches
from planc.compiler.tuning.facts import TuneError, bundle_facts
from planc.compiler.tuning.fit import FitResult, KindFit, fit, kendall_tau, mape, predict
from planc.compiler.tuning.report import Report, Row, format_changes, format_report, plot, report
from planc.runtime.bundle.loader import Bundle
from planc.runtime.engine.choice import known_choice
from planc.runtime.engine.measure import Build, load_build
from planc.runtime.engine.modules import Device, LoadedModule, ModuleError, numpy_dtype
from planc.runtime.engine.params import parameters_of
from planc.runtime.host.detect import Host, choose_variant, ranked_variants

__all__ = [
    "FitResult", "KindFit", "Measurement", "ModuleCase", "Report", "Row", "TaskTimes", "TuneError",
    "bundle_cases", "bundle_facts", "fit", "format_changes", "format_report", "kendall_tau", "mape",
    "measure", "plot", "predict", "read_traces", "report", "tool_latencies", "trace_measurements",
    "with_dispatches",
]

log = logging.getLogger(__name__)


def bundle_cases(bundle: Bundle, host: Host, *, facts: Mapping[str, ComputeFacts] | None = None,
                 source: Path | None = None, targets: Sequence[str] = ()) -> tuple[ModuleCase, ...]:
    """Every variant of every module of `bundle` that `host` can run (restricted to
    `targets` when given), with its facts (see bundle_facts)."""
    manifest = bundle.manifest
    facts = dict(facts) if facts is not None else bundle_facts(manifest, Path(bundle.path), source)
    cases = []
    params = parameters_of(manifest, bundle.read)
    for name, mod in sorted((manifest.get("modules") or {}).items()):
        counted = _counted(bundle, mod, facts[name])
        for target in ranked_variants(mod["variants"], host):
            if targets and target not in targets:
                continue
            variant = mod["variants"][target]
            # The candidate build this host runs (planc's choice here, or planrt's cached one), so the
            # fit sees the cost of what runs (an ONNX Runtime candidate too: load_build runs it).
            pick = known_choice(name, target, bundle.records.modules[name].variants[target], host=host,
                                bundle_sha=bundle.sha256)
            path, driver = ((pick.path, pick.driver) if pick is not None
                            else (variant["path"], variant.get("driver") or "local-sync"))
            vmfb = bundle.read(path)
            cases.append(ModuleCase(
                name, target, driver, vmfb,
                tuple((t["dtype"], tuple(t["shape"])) for t in mod["inputs"]),
                tuple(t["dtype"] for t in mod["outputs"]),
                counted if driver == "ort" else with_dispatches(counted, vmfb),
                params=params if mod.get("parameters") else None))
    return tuple(cases)


def _counted(bundle: Bundle, mod: Mapping[str, Any], facts: ComputeFacts) -> ComputeFacts:
    """`facts` recounted from the module's own StableHLO in the bundle (when it has it)."""
    from planc.compiler.hlo.counts import count_stablehlo

    member = mod.get("mlir")
    if not member:
        return facts
    try:
        text = bundle.read(member).decode("utf-8")
        if "torch.operator" in text:  # an ONNX import (torch dialect): its facts came from the ONNX graph
            return facts
        c = count_stablehlo(text)
    except Exception as e:  # noqa: BLE001 - an unreadable member keeps the manifest's facts
        log.warning("cannot count %s: %s", member, e)
        return facts
    if c.flops == 0 and facts.flops > 0:  # not StableHLO (an ONNX module's torch-dialect import)
        return facts
    return replace(facts, flops=c.flops, bytes_accessed=c.bytes_accessed, working_set=c.working_set,
                   dispatches=c.dispatches, mix=(), vector_flops=c.vector_flops)


def random_array(sig: TensorSig, rng: np.random.Generator) -> np.ndarray:
    """A fresh array of the declared type: normal floats, small integers, random booleans."""
    dtype, shape = sig
    np_dtype = numpy_dtype(dtype)
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if np.issubdtype(np_dtype, np.integer):
        return rng.integers(-8, 8, size=shape).astype(np_dtype)
    return rng.standard_normal(shape).astype(np_dtype)


def measure(cases: Iterable[ModuleCase], *, repeat: int = 20, warmup: int = 3, rounds: int = 1, seed: int = 0,
            clock: Callable[[], float] = time.perf_counter) -> tuple[Measurement, ...]:
    """Times every case: `warmup` untimed calls, then timed ones, one module after the other
    (as IREE's and TVM's benchmark tools do: the steady-state time of a module whose code
    and weights are warm). The `repeat` timed calls are split over `rounds` passes over all
    the cases, so that a change of load on the host touches every module alike. Each call
    gets fresh inputs drawn from the declared types, copied to the device before the clock
    starts; the time is one `invoke` (the runtime's hot path, results left on the device).
    Raises TuneError naming a module that cannot be loaded or fails."""
    if repeat < 1 or warmup < 0 or not 1 <= rounds <= repeat:
        raise TuneError(f"--repeat must be >= 1, --warmup >= 0 and --rounds from 1 to --repeat, "
                        f"found {repeat}, {warmup} and {rounds}")
    cases = tuple(cases)
    devices: dict[str, Device] = {}
    loaded = [_load(c, devices) for c in cases]
    rng = np.random.default_rng(seed)
    times: list[list[float]] = [[] for _ in cases]
    for r in range(rounds):
        share = repeat // rounds + (r < repeat % rounds)
        for case, module, samples in zip(cases, loaded, times):
            samples += _time(case, module, share, warmup, rng, clock)
    return tuple(_summary(c, t) for c, t in zip(cases, times))


def _time(case: ModuleCase, module: LoadedModule, n: int, warmup: int, rng: np.random.Generator,
          clock: Callable[[], float]) -> list[float]:
    out = []
    for r in range(warmup + n):
        views = [module.device.to_device(random_array(s, rng), s[0]) for s in case.inputs]
        start = clock()
        try:
            module.invoke(views)
        except ModuleError as e:
            raise TuneError(f"module '{case.module}' ({case.target}) failed while tuning: {e}") from None
        if r >= warmup:
            out.append(clock() - start)
    return out


def _load(case: ModuleCase, devices: dict[str, Device]) -> LoadedModule:
    try:
        return load_build(Build(case.module, case.vmfb, case.driver, case.params), devices,
                          [s[0] for s in case.inputs], list(case.outputs))
    except ModuleError as e:
        raise TuneError(f"module '{case.module}' ({case.target}) cannot be loaded here: {e}") from None


def _summary(case: ModuleCase, times: Sequence[float], source: str | None = None) -> Measurement:
    q1, _, q3 = statistics.quantiles(times, n=4) if len(times) > 1 else (times[0], 0.0, times[0])
    return Measurement(case.module, case.target, case.driver, case.facts, statistics.median(times),
                       max(0.0, q3 - q1), len(times), source or case.source)


# ------------------------------------------------------------------------------ traces

def read_traces(paths: Iterable[str | Path], manifest: Mapping[str, Any]) -> tuple[TaskTimes, ...]:
    """Per-task durations from Chrome trace files written by `planrt run --trace FILE`
    (complete "X" events: name = task, category = task kind, dur in microseconds). Tool
    tasks are mapped to their tool through the manifest. Raises TuneError naming a file
    that is not such a trace."""
    tools = {t["name"]: t["tool"] for t in _all_tasks(manifest.get("tasks", [])) if t.get("kind") == "tool"}
    found: dict[tuple[str, str], list[float]] = {}
    for path in paths:
        for event in _events(Path(path)):
            if event.get("ph") != "X":
                continue
            name, kind, dur = event.get("name"), event.get("cat"), event.get("dur")
            ok = isinstance(name, str) and isinstance(kind, str) and isinstance(dur, int | float) and dur >= 0
            if not ok:
                raise TuneError(f"{path}: malformed slice {json.dumps(event)[:120]} "
                                "(expected name, cat and dur >= 0)")
            found.setdefault((str(name), str(kind)), []).append(float(dur) * 1e-6)  # type: ignore[arg-type]
    return tuple(TaskTimes(name, kind, tuple(d), tools.get(name) if kind == "tool" else None)
                 for (name, kind), d in sorted(found.items()))


def _events(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TuneError(f"trace {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise TuneError(f"trace {path} is not Chrome trace JSON: {e}") from None
    events = data.get("traceEvents") if isinstance(data, dict) else data
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise TuneError(f"trace {path} has no list of trace events (expected {{\"traceEvents\": [...]}})")
    return events


def _all_tasks(tasks: Iterable[Mapping[str, Any]]) -> Iterable[Mapping[str, Any]]:
    for t in tasks:
        yield t
        yield from _all_tasks(t.get("body") or [])


def tool_latencies(times: Iterable[TaskTimes]) -> dict[str, float]:
    """Median seconds per tool over all its tasks' slices."""
    by_tool: dict[str, list[float]] = {}
    for t in times:
        if t.tool is not None:
            by_tool.setdefault(t.tool, []).extend(t.durations)
    return {tool: statistics.median(d) for tool, d in sorted(by_tool.items())}


def trace_measurements(times: Iterable[TaskTimes], manifest: Mapping[str, Any], host: Host,
                       facts: Mapping[str, ComputeFacts]) -> tuple[Measurement, ...]:
    """Compute slices as measurements of the variant the runtime picks on `host` (the
    trace is assumed to come from this host, or one like it)."""
    tasks = _all_tasks(manifest.get("tasks", []))
    modules = {t["name"]: t["module"] for t in tasks if t.get("kind") == "compute"}
    out = []
    for t in times:
        name = modules.get(t.task)
        if t.kind != "compute" or name is None or name not in facts:
            continue
        variants = manifest["modules"][name]["variants"]
        target = choose_variant(variants, host, module=name)
        driver = variants[target].get("driver") or "local-sync"
        case = ModuleCase(name, target, driver, b"", (), (), facts[name])
        out.append(_summary(case, t.durations, "trace"))
    return tuple(out)
