"""The whole compile: .plan -> passes -> StableHLO per group -> IREE per target -> one bundle."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from planc.compiler.bundle.manifest import schedule_json, tasks_json, tool_table, type_json
from planc.compiler.bundle.onnx_verify import verify_onnx_builds
from planc.compiler.bundle.writer import write_bundle, write_bundle_dir
from planc.compiler.cache import Cache
from planc.compiler.codegen.candidates import parse_sets
from planc.compiler.codegen.compile import CompileErrors, CompileJob, compile_all, default_jobs
from planc.compiler.codegen.iree import IreeCompileError
from planc.compiler.codegen.lower import LoweredModule, lower_all
from planc.compiler.codegen.params import MIN_PARAM_BYTES, SCOPE, externalize, write_archive
from planc.compiler.codegen.targets import Backend, Target
from planc.compiler.codegen.variants import (
    VariantBuilds,
    candidate_jobs,
    measure_here,
    ort_builds,
    plan_variant,
)
from planc.compiler.costs.context import CompileContext
from planc.compiler.costs.model import HEAVY_FLOPS
from planc.compiler.ir.graph import ComputeTask, GroupTask, PlanGraph
from planc.compiler.passes import Build, InferTypes, Merge, Schedule, Verify
from planc.compiler.pipeline import PipelineOptions, PipelineResult, front_check, run_pipeline
from planc.dsl.diagnostics import Diagnostic, DiagnosticError
from planc.dsl.parser import parse_file
from planc.runtime.contract.manifest import Variant

from planc import __version__

__all__ = ["HEAVY_FLOPS", "BuildOptions", "BuildResult", "build_bundle", "optimize"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildOptions:
    """What `planc compile` may set: deployment, tuned profile, targets, cache, parallelism."""

    deploy: str = ""
    tuned: str = ""
    targets: tuple[str, ...] = ()
    method: str = "auto"
    opt_time: float | None = None  # the scheduler's solver budget (None: scaled by plan size)
    max_group: int = 64
    cache: bool = True
    jobs: int | None = None
    progress: Any = "auto"
    save_temps: str | None = None
    # Constants of at least this many bytes go to the bundle's parameter archive (None: all stay inline).
    param_min_bytes: int | None = MIN_PARAM_BYTES
    candidates: str = "none"  # flag sets to build beside plain (candidates.parse_sets): "auto", "nhwc,im2col"
    measure: bool = True      # time the candidates of this host's target at compile time
    pipeline: PipelineOptions = field(default_factory=lambda: PipelineOptions(verify_each=True))


@dataclass
class BuildResult:
    graph: PlanGraph
    modules: list[LoweredModule]
    manifest: dict[str, Any]
    members: dict[str, bytes]
    path: Path | None = None
    sha256: str = ""
    pipeline: PipelineResult | None = None


def _select(module, plan: str | None, path: Path):
    plans = [p for p in module.plans if plan is None or p.name.name == plan]
    names = ", ".join(p.name.name for p in module.plans) or "(none)"
    if plan is not None and not plans:
        raise ValueError(f"no plan '{plan}' in {path}; it has: {names}")
    if len(plans) > 1:
        raise ValueError(f"{path} has {len(plans)} plans ({names}); choose one with --plan")
    return plans[0]


def optimize(path: str | Path, *, plan: str | None = None, options: BuildOptions = BuildOptions(),
             context: CompileContext | None = None) -> PipelineResult:
    """Parse, check, build IR, verify, infer types, merge and schedule one plan. `context` is the
    compile's (the profile, tuned model and cost models, resolved once); a fresh one by default."""
    path = Path(path)
    context = context or CompileContext(options.tuned)
    module = parse_file(path)
    diags = front_check(module)
    if any(d.is_error for d in diags):
        raise DiagnosticError(diags)
    ast_plan = _select(module, plan, path)
    front = run_pipeline(ast_plan, (Build(), Verify(), InferTypes()), options.pipeline)
    graph = front.graph
    if options.targets:  # --target replaces the plan's targets before anything is placed
        graph = graph.with_info(targets=tuple(options.targets))
    back = run_pipeline(graph, (Merge(deploy=options.deploy, tuned=options.tuned, max_group=options.max_group,
                                      context=context),
                                Schedule(deploy=options.deploy, tuned=options.tuned, method=options.method,
                                         opt_time=-1.0 if options.opt_time is None else options.opt_time,
                                         context=context)),
                        options.pipeline)
    return dataclasses.replace(back, timings=(*front.timings, *back.timings),
                               diagnostics=(*diags, *front.diagnostics, *back.diagnostics))


def _driver(target: Target, group: GroupTask | None, heavy_flops: float = HEAVY_FLOPS) -> str:
    if target.drivers[0] != "local-sync" and "local-task" not in target.drivers:
        return target.driver
    heavy = group is not None and group.facts is not None and group.facts.flops >= heavy_flops
    return "local-task" if heavy else "local-sync"


def _heavy_flops(context: CompileContext) -> dict[str, float]:
    """The local-sync / local-task crossover `planc tune` measured, per device kind."""
    tuning = context.tuning
    if tuning is None:
        return {}
    return {k: f.local_task_flops for k, f in tuning.devices.items() if f.local_task_flops > 0}


def build_bundle(path: str | Path, out: str | Path | None, *, plan: str | None = None,
                 options: BuildOptions = BuildOptions()) -> BuildResult:
    """Compile one plan to a bundle at `out` (a `.planb` file, or a directory when `out` ends
    with '/' or is an existing directory); `out=None` builds in memory only."""
    path = Path(path)
    context = CompileContext(options.tuned)  # resolved once: passes, manifest and driver choice share it
    result = optimize(path, plan=plan, options=options, context=context)
    graph = result.graph
    targets = tuple(Target.parse(t) for t in (options.targets or graph.info.targets))
    store = Cache.default() if options.cache else None
    modules = lower_all(graph, store=store)
    params: dict[str, bytes] = {}
    keys: dict[str, list[str]] = {}
    if options.param_min_bytes is not None:
        modules, params, keys = _externalize(modules, options.param_min_bytes)
    sets = parse_sets(options.candidates)
    jobs = [CompileJob(m.name, t, m.mlir) for m in modules for t in targets]
    jobs += [j for m in modules for j in candidate_jobs(m.name, m.mlir, targets, sets)]
    failed: dict[tuple[str, Target], str] = {}
    try:
        built = compile_all(jobs, cache=store, jobs_n=options.jobs,
                            progress=options.progress, save_temps=options.save_temps)
    except CompileErrors as e:
        plain = [err for err in e.errors if "@" not in err.module_name]
        if plain:
            raise DiagnosticError([_compile_diagnostic(graph, err) for err in plain]) from None
        built = e.results  # a flag set IREE refuses is only a candidate less
        failed = {(err.module_name, err.target): _first_line(err.stderr) for err in e.errors}
    archive = write_archive(params) if params else None
    checked = verify_onnx_builds(graph, modules, targets, built, archive=archive)  # the plain builds, against ORT
    if checked.diagnostics:
        raise DiagnosticError(checked.diagnostics)
    manifest, members = _manifest(path, graph, modules, targets, (built, failed, sets), options, context, archive)
    measured = measured_seconds(manifest)
    if measured and graph.info.schedule is not None:  # the chosen builds' times, not the estimates
        graph = _reschedule(graph, measured, options, context, manifest)
        result = dataclasses.replace(result, graph=graph)
    if archive is not None:
        _add_parameters(manifest, members, archive, params, keys)
    res = BuildResult(graph, modules, manifest, members, pipeline=result)
    if out is not None:
        out = Path(out)
        directory = str(out).endswith("/") or out.is_dir()
        res.sha256 = (write_bundle_dir if directory else write_bundle)(out, manifest, members)
        res.path = out
    return res


PARAMS_MEMBER = "params/weights.irpa"


def measured_seconds(manifest: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Each module's compile-time measured seconds per call of its chosen build, by target."""
    out: dict[str, dict[str, float]] = {}
    for name, mod in manifest["modules"].items():
        for target, v in mod["variants"].items():
            choice = v.get("choice") or {}
            s = (choice.get("seconds") or {}).get(choice.get("chosen"))
            if s:
                out.setdefault(name, {})[target] = float(s)
    return out


def _reschedule(graph: PlanGraph, measured: dict[str, dict[str, float]], options: BuildOptions,
                context: CompileContext, manifest: dict[str, Any]) -> PlanGraph:
    """Schedule again with the measured modules at their measured cost; the manifest's schedule
    records the cost model's makespan it replaces and the seconds it used."""
    before = graph.info.schedule
    assert before is not None
    graph = Schedule(deploy=options.deploy, tuned=options.tuned, method=options.method,
                     opt_time=-1.0 if options.opt_time is None else options.opt_time,
                     context=context, measured=measured).run(graph)
    after = graph.info.schedule
    assert after is not None
    manifest["schedules"] = {after.deployment: {**schedule_json(after), "estimated_makespan": before.makespan,
                                                "measured": measured}}
    manifest["tasks"] = tasks_json(graph)
    return graph


def _externalize(modules: list[LoweredModule], min_bytes: int
                 ) -> tuple[list[LoweredModule], dict[str, bytes], dict[str, list[str]]]:
    """Every module without its large constants, the distinct constants by content key, and the
    keys each module loads."""
    out, params, keys = [], {}, {}
    for m in modules:
        ext = externalize(m.mlir, min_bytes=min_bytes)
        out.append(dataclasses.replace(m, mlir=ext.mlir))
        params.update(ext.params)
        keys[m.name] = sorted(ext.params)
    return out, params, keys


def _add_parameters(manifest: dict[str, Any], members: dict[str, bytes], archive: bytes,
                    params: dict[str, bytes], keys: dict[str, list[str]]) -> None:
    """One archive member for all modules; each module lists the parameter keys it loads."""
    members[PARAMS_MEMBER] = archive
    manifest["parameters"] = {"path": PARAMS_MEMBER, "scope": SCOPE, "count": len(params),
                              "bytes": sum(len(v) for v in params.values())}
    for name, mod in manifest["modules"].items():
        if keys.get(name):
            mod["parameters"] = keys[name]


def _compile_diagnostic(graph: PlanGraph, err: IreeCompileError) -> Diagnostic:
    """An IREE failure as a diagnostic at the model's declaration, naming model, task and target."""
    group = next((t for t in graph.walk() if isinstance(t, GroupTask) and t.name == err.module_name), None)
    members = list(group.members) if group is not None else []
    models = [graph.info.model(m.model) for m in members if isinstance(m, ComputeTask)]
    what = ", ".join(f"'{m.name}'" for m in models) or f"module '{err.module_name}'"
    tasks = ", ".join(m.name for m in members)
    stderr = "\n".join(err.stderr.strip().splitlines()[:12])
    return Diagnostic.error(
        "E0501", f"IREE cannot compile model {what} for target {err.target.value}",
        models[0].span if models else None, label=f"used by task(s) {tasks}" if tasks else "",
        notes=((f"iree-compile said:\n{stderr}", None),),
        help="rerun with --save-temps DIR to keep IREE's input, command and intermediate files; "
             "or drop the target with --target")


def _onnx_path(graph: PlanGraph, group: GroupTask | None) -> Path | None:
    """The ONNX file of a group that is one ONNX model (issue 23's front end), else None."""
    if group is None or len(group.members) != 1 or not isinstance(group.members[0], ComputeTask):
        return None
    decl = graph.info.model(group.members[0].model)
    return decl.path if decl.kind.value == "onnx" else None


def _first_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[0][:200] if lines else "iree-compile failed"


def _host_target(targets: tuple[Target, ...]) -> tuple[Target | None, str]:
    """The best CPU target of `targets` this host runs (its candidates are measured here), and the
    host's key for the choice's record."""
    from planc.runtime.engine.choice import host_key
    from planc.runtime.host.detect import NoVariantError, choose_variant, detect

    host = detect({}, cuda=False)  # this machine, whatever PLANRT_HOST pretends (it is where we can time)
    cpu = {t.value: {"requires": sorted(t.requires), "rank": t.rank} for t in targets
           if t.backend is Backend.LLVM_CPU}
    try:
        return Target.parse(choose_variant(cpu, host, module="(candidates)")), host_key(host)
    except NoVariantError:
        return None, host_key(host)


def _candidate_fields(v: VariantBuilds) -> dict[str, Any]:
    """A variant's measured-choice fields (none for a module built one way only)."""
    out: dict[str, Any] = {}
    if v.candidates:
        out["candidates"] = v.candidates
        out["reference"] = v.reference
    if v.choice is not None:
        out["choice"] = v.choice
    if v.failed:
        out["refused"] = v.failed
    return out


def _versions() -> dict[str, str]:
    import iree.compiler.version as iv
    import jax

    return {"planc": __version__, "iree": str(iv.VERSION), "jax": jax.__version__}


def _manifest(path: Path, graph: PlanGraph, modules: list[LoweredModule], targets: tuple[Target, ...],
              built: dict, options: BuildOptions, context: CompileContext,
              archive: bytes | None = None) -> tuple[dict[str, Any], dict[str, bytes]]:
    members: dict[str, bytes] = {}
    params = None
    if archive is not None and len(built[2]) > 1:  # candidates are timed with the bundle's weights
        from planc.runtime.engine.params import Parameters

        params = Parameters(archive, SCOPE)
    builds, failed, sets = built
    here, key = _host_target(targets) if len(sets) > 1 else (None, "")
    ort_memo: dict[tuple[str, str], bytes | None] = {}
    groups = {t.name: t for t in graph.walk() if isinstance(t, GroupTask)}
    heavy = _heavy_flops(context)
    mods: dict[str, Any] = {}
    for m in modules:
        members[f"mlir/{m.name}.mlir"] = m.mlir.encode()
        variants = {}
        for t in targets:
            driver = _driver(t, groups.get(m.name), heavy.get(t.value, HEAVY_FLOPS))
            onnx = _onnx_path(graph, groups.get(m.name)) if len(sets) > 1 else None
            v = plan_variant(m.name, t, builds, sets, failed, default_driver=driver, cores=default_jobs(),
                             ort=ort_builds(onnx, t, here, ort_memo) if onnx is not None else None)
            if v.candidates and t is here and options.measure:
                measure_here(m.name, t, v, [type_json(x) for x in m.input_types],
                             [type_json(x) for x in m.output_types], key, params=params)
            members.update(v.members)
            variants[t.value] = {**Variant(t.value, f"modules/{m.name}/{t.value}.vmfb", t.backend.value, driver,
                                           t.requires, t.rank).to_json(), **_candidate_fields(v)}
        g = groups.get(m.name)
        facts = {"flops": g.facts.flops, "bytes_accessed": g.facts.bytes_accessed} if g and g.facts else None
        mods[m.name] = {"facts": facts, "inputs": [type_json(x) for x in m.input_types],
                        "outputs": [type_json(x) for x in m.output_types],
                        "args": list(m.inputs), "results": list(m.outputs),
                        "members": list(m.members), "mlir": f"mlir/{m.name}.mlir", "variants": variants}
    tools, tool_members = tool_table(graph.info.tools)
    members.update(tool_members)
    info = graph.info
    schedules = {info.schedule.deployment: schedule_json(info.schedule)} if info.schedule else {}
    model = context.cost_model(graph, options.deploy or (info.deployment or ""))
    input_types = {t.name: t.type for t in graph.tasks() if t.kind == "input"}  # type: ignore[attr-defined]
    manifest = {
        "schema": 1,
        "plan": info.name,
        "source": {"file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()},
        "versions": _versions(),
        "objective": info.objective.value,
        "targets": [t.value for t in targets],
        "inputs": [{"name": n, **type_json(input_types[n])} for n in info.inputs],  # type: ignore[dict-item]
        "outputs": [{"name": str(r), "value": str(r)} for r in graph.outputs],
        "tasks": tasks_json(graph),
        "modules": mods,
        "tools": tools,
        "schedules": schedules,
        "cost_model": model.describe(),
    }
    return manifest, members
