"""The deployment a plan is optimized for: its cost model, and task costs on its devices."""

from __future__ import annotations

import math
from collections.abc import Mapping

from planc.compiler.costs.model import ComputeFacts, CostModel
from planc.compiler.ir.graph import (
    BuiltinTask,
    ComputeTask,
    CostFacts,
    GateTask,
    GroupTask,
    InputTask,
    LoopTask,
    OutputTask,
    PlanGraph,
    Task,
    ToolTask,
    ValueType,
)
from planc.compiler.scheduling import Device, Link, Platform
from planc.dsl.diagnostics import Diagnostic, DiagnosticError
from planc.runtime.contract.targets import ALSO_RUNS

__all__ = [
    "DEFAULT_GUARD_PROB",
    "arg_type",
    "default_deployment",
    "expected_iterations",
    "io_lane",
    "platform_of",
    "runnable",
    "runs_on",
    "task_cost",
    "task_facts",
]

# A guarded task without `prob` is expected to run half the time; a loop without
# `expect` runs half its bound (docs/scheduling.md states both).
DEFAULT_GUARD_PROB = 0.5


def default_deployment(targets: tuple[str, ...]) -> str:
    """The shipped deployment that best matches a plan's targets when `--deploy` is not given."""
    t = set(targets)
    if any(x.startswith("cuda") for x in t) and "x86_64-avx2" in t:
        return "edge-x86-gpu"
    for target, deployment in (("x86_64-avx512", "x86-only"), ("x86_64-avx2", "edge-avx2"),
                               ("aarch64-neon", "arm-board")):
        if target in t:
            return deployment
    return "portable"


def _dtype(t: ValueType) -> str:
    return t.dtype.value if t is not None else "f32"


def task_facts(task: Task, in_types: list[ValueType]) -> ComputeFacts | None:
    """Roofline facts of a compute-like task (None for tools, gates, loops and inputs)."""
    if isinstance(task, GroupTask) and task.facts is not None:
        dtype = _dtype(task.results[0]) if task.results else "f32"
        return ComputeFacts(task.facts.flops, task.facts.bytes_accessed, dtype, key=task.name)
    if isinstance(task, ComputeTask):
        f = task.facts or _io_facts(task, in_types)
        return ComputeFacts(f.flops, f.bytes_accessed, _dtype(task.results[0]) if task.results else "f32",
                            working_set=f.working_set, vector_flops=f.vector_flops)
    if isinstance(task, BuiltinTask):
        nbytes = sum(t.nbytes for t in in_types if t is not None)
        elems = sum(math.prod(t.shape) for t in in_types if t is not None)
        return ComputeFacts(float(elems), float(nbytes), _dtype(in_types[0]) if in_types else "f32")
    return None


def _io_facts(task: Task, in_types: list[ValueType]) -> CostFacts:
    # A model typed without cost facts (infer-types with facts off): its I/O traffic, no flops.
    nbytes = sum(t.nbytes for t in (*in_types, *task.results) if t is not None)
    return CostFacts(0.0, float(nbytes))


def expected_iterations(loop: LoopTask) -> float:
    return loop.expect if loop.expect is not None else max(1.0, loop.max_iter / 2)


def task_cost(graph: PlanGraph, task: Task, model: CostModel, devices: tuple[str, ...],
              runnable: Mapping[str, bool]) -> dict[str, float]:
    """Expected seconds of `task` on each device (inf where it cannot run); guards scale by
    their probability, loops by their expected iterations. Tools, gates, builtins outside a
    group, inputs and loops run on the deployment's host."""
    host = model.deployment.host
    prob = 1.0 if task.guard is None else (task.prob if task.prob is not None else DEFAULT_GUARD_PROB)
    host_only = {d: (0.0 if d == host else math.inf) for d in devices}
    # A tool call or a gate waits on something outside (a process, a service, a person): with
    # its own I/O lane in `devices` it runs there, concurrently with everything else.
    lane = io_lane(task.name) if isinstance(task, (ToolTask, GateTask)) and io_lane(task.name) in devices else host
    if isinstance(task, (InputTask, OutputTask, GateTask)):
        return {d: (0.0 if d == lane else math.inf) for d in devices}
    if isinstance(task, ToolTask):
        return {d: (model.tool_time(task.policy.cost, key=task.tool) * prob if d == lane else math.inf)
                for d in devices}
    if isinstance(task, LoopTask):
        body = sum(min(task_cost(task.body, t, model, devices, runnable).values())
                   for t in task.body.tasks())
        return {d: (body * expected_iterations(task) * prob if d == host else math.inf) for d in devices}
    facts = task_facts(task, [arg_type(graph, a) for a in task.uses()])
    if facts is None:
        return host_only
    if isinstance(task, BuiltinTask):
        return {d: (model.compute_time(facts, d) * prob if d == host else math.inf) for d in devices}
    return {d: (model.compute_time(facts, d) * prob if runnable.get(d, False) else math.inf) for d in devices}


def arg_type(graph: PlanGraph, ref) -> ValueType:
    """The type of a value a task reads; None for a loop body's outer value (typed elsewhere)."""
    try:
        return graph.value_type(ref)
    except Exception:  # noqa: BLE001 - a loop body's outer value: typed elsewhere, cost estimate only
        return None


def io_lane(task: str) -> str:
    """The scheduler's device for one tool call or gate: it occupies no compute device."""
    return f"io:{task}"


def platform_of(model: CostModel, lanes: tuple[str, ...] = ()) -> Platform:
    """The scheduler's view of a deployment: devices with memory and power, links per pair,
    plus I/O lanes (no memory bound, no power, free links: the value goes to the host)."""
    dep = model.deployment
    devices = tuple(Device(d.name, memory=d.spec.memory_bytes, watts=d.spec.power_busy_w,
                           idle_watts=d.spec.power_idle_w) for d in dep.devices)
    devices += tuple(Device(name) for name in lanes)
    links: dict[tuple[str, str], Link] = {}
    for a in dep.names:
        for b in dep.names:
            if a != b:
                route = dep.route(a, b)
                links[(a, b)] = Link(latency=sum(x.latency for x in route),
                                     bandwidth=min(x.bandwidth for x in route))
    return Platform(devices, links=links, pue=dep.pue)


# Device kind -> the other targets whose code it also runs: the vocabulary's table.
COMPATIBLE = ALSO_RUNS


def runs_on(device_kind: str, targets: tuple[str, ...]) -> bool:
    """Whether a device of this kind can run a module compiled for one of `targets`."""
    return not targets or any(t == device_kind or t in COMPATIBLE.get(device_kind, ()) for t in targets)


def runnable(graph: PlanGraph, model: CostModel) -> dict[str, bool]:
    """Which deployment devices a plan's modules can run on (see `runs_on`); a diagnostic
    (E0602) when none can."""
    ok = {d.name: runs_on(d.spec.target.value, graph.info.targets) for d in model.deployment.devices}
    if not any(ok.values()):
        dep = model.deployment
        kinds = ", ".join(f"{d.name}={d.kind}" for d in dep.devices)
        raise DiagnosticError([Diagnostic.error(
            "E0602", f"deployment '{dep.name}' has no device that can run this plan's targets",
            graph.info.span, label=f"targets {', '.join(graph.info.targets)}",
            notes=((f"the deployment's devices: {kinds}", None),),
            help="add a matching target to the plan, or pick another deployment with --deploy")])
    return ok
