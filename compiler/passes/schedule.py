"""The `schedule` pass: order and place the (merged) tasks on the deployment's devices."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import networkx as nx
from planc.compiler.costs.context import CompileContext
from planc.compiler.costs.deploy import DEFAULT_GUARD_PROB, io_lane, platform_of, runnable, task_cost
from planc.compiler.ir.graph import GateTask, GroupTask, PlanGraph, PlanSchedule, Slot, ToolTask
from planc.compiler.scheduling import Bounds, schedule

__all__ = ["Schedule", "task_graph"]


@dataclass(frozen=True)
class Schedule:
    """Places every top-level task on a device instance and predicts its start and finish,
    minimizing the plan's objective; records HEFT's makespan and the lower bounds beside ours.
    `opt-time` is the solver's deterministic time limit (negative: scaled by plan size)."""

    name: ClassVar[str] = "schedule"
    deploy: str = ""
    tuned: str = ""
    method: str = "auto"
    seed: int = 0
    opt_time: float = -1.0
    io_lanes: bool = True  # tool calls and gates get their own lane (planrt runs them concurrently)
    context: CompileContext | None = field(default=None, compare=False, repr=False)  # the compile's, if any
    # Measured seconds per call of a module's chosen build, by module and target (issue 24): on a
    # device of that target they replace the cost model's estimate.
    measured: Mapping[str, Mapping[str, float]] = field(default_factory=dict, compare=False, repr=False)

    def run(self, graph: PlanGraph) -> PlanGraph:
        ctx = self.context or CompileContext(self.tuned)
        model = ctx.cost_model(graph, self.deploy or (graph.info.deployment or ""))
        lanes = io_lanes(graph) if self.io_lanes else ()
        g = task_graph(graph, model, lanes, self.measured)
        platform = platform_of(model, lanes)
        objective = graph.info.objective.value
        ours = schedule(g, platform, objective=objective, method=self.method, seed=self.seed,
                        opt_time=None if self.opt_time < 0 else self.opt_time)
        heft = schedule(g, platform, objective=objective, method="heft")
        dep = model.deployment
        record = PlanSchedule(
            deployment=dep.name, objective=objective, method=ours.method.value,
            devices=tuple((d.name, d.kind) for d in dep.devices) + tuple((lane, "io") for lane in lanes),
            slots=tuple(Slot(str(t), p.device, p.start, p.finish) for t, p in ours.placements.items()),
            makespan=ours.makespan, energy=ours.energy, period=ours.period, heft_makespan=heft.makespan,
            **_bounds(ours.bounds),
        )
        placed = [replace(t, device=ours.placements[t.name].device)
                  for t in graph.tasks() if isinstance(t, GroupTask)]
        out = graph.replace_tasks(placed) if placed else graph
        return out.with_info(deployment=dep.name, schedule=record)


def _bounds(b: Bounds | None) -> dict[str, Any]:
    if b is None:
        return {}
    named = (("critical path", b.critical_path), ("work / devices", b.work), ("precedence LP", b.lp),
             ("solver", b.solver))
    return {"lower_bound": b.best, "bounds": tuple((k, v) for k, v in named if v > 0), "proven": b.proven,
            "solver": b.solver_status}


def _measured_cost(t: GroupTask, cost: dict[str, float], seconds: Mapping[str, float],
                   kinds: Mapping[str, str]) -> dict[str, float]:
    """A group's per-device cost with its measured time where a device's target was measured."""
    prob = 1.0 if t.guard is None else (t.prob if t.prob is not None else DEFAULT_GUARD_PROB)
    return {d: (seconds[kinds[d]] * prob if kinds.get(d) in seconds and c != math.inf else c)
            for d, c in cost.items()}


def io_lanes(graph: PlanGraph) -> tuple[str, ...]:
    """One I/O lane per top-level tool call and gate (they wait, they do not compute)."""
    return tuple(io_lane(t.name) for t in graph.tasks() if isinstance(t, (ToolTask, GateTask)))


def task_graph(graph: PlanGraph, model, lanes: tuple[str, ...] = (),
               measured: Mapping[str, Mapping[str, float]] | None = None) -> nx.DiGraph:
    """The bare task graph the scheduling library works on: per-device costs, bytes per edge.
    `measured` (module -> target -> seconds) replaces a group's estimate on devices of that target."""
    usable = runnable(graph, model)
    names = model.deployment.names + tuple(lanes)
    kinds = {d.name: d.spec.target.value for d in model.deployment.devices}
    g = nx.DiGraph()
    for n in graph.topo_order():
        t = graph.task(n)
        cost = task_cost(graph, t, model, names, usable)
        if measured and isinstance(t, GroupTask) and t.name in measured:
            cost = _measured_cost(t, cost, measured[t.name], kinds)
        g.add_node(n, cost=cost)
    for u, v in graph.nx.edges:
        g.add_edge(u, v, bytes=float(graph.edge(u, v).nbytes))
    return g
