"""Why the optimizer chose this plan: groups, placement and predicted timeline, as data and text."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from planc.compiler.bundle.build import BuildOptions, optimize
from planc.compiler.costs.context import CompileContext
from planc.compiler.costs.deploy import runnable, task_cost
from planc.compiler.costs.model import CostModel
from planc.compiler.ir.graph import OUTPUT, GroupTask, LoopTask, PlanGraph, PlanSchedule, Slot

from planc.enums import TextEnum

__all__ = ["Explanation", "GroupInfo", "SlotInfo", "SlotKind", "bound_line", "explain", "explain_plan",
           "format_explanation"]


class SlotKind(TextEnum, noun="task kind"):
    """What a scheduled task is; the Gantt chart colors bars by it."""

    INPUT = "input"
    GROUP = "group"
    COMPUTE = "compute"
    BUILTIN = "builtin"
    TOOL = "tool"
    GATE = "gate"
    LOOP = "loop"


@dataclass(frozen=True, slots=True)
class GroupInfo:
    """One merged group (one compiled module): its members, the device chosen for it and the
    cost model's predicted seconds on every device instance (inf where it cannot run).
    `loop` names the loop whose body holds it (its device is then the merge pass's choice)."""

    name: str
    members: tuple[str, ...]
    device: str | None
    seconds: tuple[tuple[str, float], ...]
    flops: float
    bytes_accessed: float
    loop: str | None = None


@dataclass(frozen=True, slots=True)
class SlotInfo:
    """One scheduled task: device instance and kind, predicted start and finish (s), and the
    energy (J) its device draws while busy with it."""

    task: str
    kind: SlotKind
    label: str
    device: str
    device_kind: str
    start: float
    finish: float
    energy: float

    @property
    def seconds(self) -> float:
        return self.finish - self.start


@dataclass(frozen=True, slots=True)
class Explanation:
    """A plan's optimized schedule on one deployment, with the totals, HEFT's makespan and
    the lower bounds on the objective (`bounds`: (name, value) pairs, `lower_bound` the best;
    `proven`: optimal; `solver`: CP-SAT's status, "" when it did not run)."""

    plan: str
    deployment: str
    objective: str
    method: str
    devices: tuple[tuple[str, str], ...]  # (instance, kind)
    groups: tuple[GroupInfo, ...]
    slots: tuple[SlotInfo, ...]  # by start, finish, device, name
    makespan: float
    energy: float
    period: float
    heft_makespan: float
    lower_bound: float = 0.0
    bounds: tuple[tuple[str, float], ...] = ()
    proven: bool = False
    solver: str = ""
    gap: float = math.inf

    def placement(self) -> dict[str, tuple[str, ...]]:
        """Device instance -> the tasks it runs, in start order (every instance, busy or not)."""
        return {d: tuple(s.task for s in self.slots if s.device == d) for d, _ in self.devices}

    def to_json(self) -> dict[str, Any]:
        """Everything, JSON-able: seconds and joules as floats, null where a device cannot run a group."""
        return {
            "plan": self.plan, "deployment": self.deployment, "objective": self.objective, "method": self.method,
            "devices": [{"name": n, "kind": k} for n, k in self.devices],
            "groups": [{"name": g.name, "members": list(g.members), "device": g.device, "loop": g.loop,
                        "seconds": {d: (s if math.isfinite(s) else None) for d, s in g.seconds},
                        "flops": g.flops, "bytes": g.bytes_accessed} for g in self.groups],
            "placement": {d: list(ts) for d, ts in self.placement().items()},
            "slots": [{"task": s.task, "kind": s.kind.value, "device": s.device, "device_kind": s.device_kind,
                       "start": s.start, "finish": s.finish, "energy": s.energy} for s in self.slots],
            "totals": {"makespan": self.makespan, "energy": self.energy, "period": self.period,
                       "heft_makespan": self.heft_makespan},
            "bounds": {"lower_bound": self.lower_bound, "by": dict(self.bounds), "proven": self.proven,
                       "solver": self.solver or None, "gap": self.gap if math.isfinite(self.gap) else None},
        }


def explain_plan(path: str | Path, *, plan: str | None = None, options: BuildOptions | None = None) -> Explanation:
    """Optimizes one plan (`optimize`) and explains the result on the same cost model."""
    options = options or BuildOptions()
    context = CompileContext(options.tuned)
    graph = optimize(path, plan=plan, options=options, context=context).graph
    return explain(graph, context.cost_model(graph, options.deploy or (graph.info.deployment or "")))


def explain(graph: PlanGraph, model: CostModel) -> Explanation:
    """The explanation of a scheduled graph; `model` must be the cost model it was scheduled with."""
    s = graph.info.schedule
    if s is None:
        raise ValueError(f"plan '{graph.info.name}' has not been scheduled: run the schedule pass first")
    kinds = dict(s.devices)
    slots = [_slot(graph, x, kinds, model) for x in s.slots if x.task != OUTPUT]
    slots.sort(key=lambda x: (x.start, x.finish, x.device, x.task))
    return Explanation(
        plan=graph.info.name, deployment=s.deployment, objective=s.objective, method=s.method, devices=s.devices,
        groups=tuple(_groups(graph, model)), slots=tuple(slots),
        makespan=s.makespan, energy=s.energy, period=s.period, heft_makespan=s.heft_makespan,
        lower_bound=s.lower_bound, bounds=s.bounds, proven=s.proven, solver=s.solver, gap=s.gap)


def _slot(graph: PlanGraph, slot: Slot, kinds: dict[str, str], model: CostModel) -> SlotInfo:
    task = graph.task(slot.task)
    kind = SlotKind.parse(task.kind)
    label = task.name
    if isinstance(task, GroupTask):
        names = [m.name for m in task.members]
        shown = names if len(names) <= 3 else [*names[:2], f"+{len(names) - 2}"]
        label = f"{task.name} [{', '.join(shown)}]"
    busy = slot.finish - slot.start  # an I/O lane (a tool call, a gate) draws no device power
    energy = model.energy(busy, slot.device) if slot.device in model.deployment.names else 0.0
    return SlotInfo(slot.task, kind, label, slot.device, kinds[slot.device], slot.start, slot.finish, energy)


def _groups(graph: PlanGraph, model: CostModel, loop: str | None = None) -> list[GroupInfo]:
    names = model.deployment.names
    usable = runnable(graph, model)
    out: list[GroupInfo] = []
    for n in graph.topo_order():
        t = graph.task(n)
        if isinstance(t, GroupTask):
            costs = task_cost(graph, t, model, names, usable)
            facts = t.facts
            out.append(GroupInfo(t.name, tuple(m.name for m in t.members), t.device,
                                 tuple((d, costs[d]) for d in names),
                                 facts.flops if facts else 0.0, facts.bytes_accessed if facts else 0.0, loop))
        elif isinstance(t, LoopTask):
            out += _groups(t.body, model, t.name)
    return out


# -- text ---------------------------------------------------------------------------------
def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f}ms" if math.isfinite(seconds) else "-"


def format_explanation(e: Explanation) -> str:
    """The human-readable report: header, groups, placement, timeline and totals."""
    devices = ", ".join(f"{n}={k}" for n, k in e.devices)
    lines = [f"plan {e.plan} on {e.deployment} ({devices}), objective {e.objective}, method {e.method}", ""]
    lines += _group_lines(e)
    lines += ["", "placement"]
    lines += [f"  {d:<8} {dict(e.devices)[d]:<14} {', '.join(ts) or '(idle)'}" for d, ts in e.placement().items()]
    head = (f"  {'task':<16} {'kind':<8} {'device':<8} {'device kind':<14} "
            f"{'start':>12} {'finish':>12} {'energy (J)':>10}")
    lines += ["", "timeline", head]
    lines += [f"  {s.task:<16} {s.kind.value:<8} {s.device:<8} {s.device_kind:<14} "
              f"{_ms(s.start):>12} {_ms(s.finish):>12} {s.energy:>10.4g}" for s in e.slots]
    ratio = e.makespan / e.heft_makespan if e.heft_makespan > 0 else 1.0
    totals = (f"makespan {_ms(e.makespan)} (HEFT {_ms(e.heft_makespan)}, ratio {ratio:.3f}), "
              f"energy {e.energy:.4g} J, period {_ms(e.period)}")
    lines += ["", totals, bound_line(e)]
    return "\n".join(lines) + "\n"


def bound_line(s: PlanSchedule | Explanation) -> str:
    """Which method produced the schedule, the lower bounds on its objective and the gap."""
    unit = (lambda x: f"{x:.4g} J") if s.objective == "energy" else _ms
    parts = ", ".join(f"{name} {unit(v)}" for name, v in s.bounds) or "none"
    solver = f"; solver {s.solver.lower()}" if s.solver else "; solver not run"
    gap = "proven optimal" if s.proven else ("gap unknown" if not math.isfinite(s.gap) else
                                             f"gap <= {100 * s.gap:.2f} %")
    return (f"method {s.method}{solver}; {s.objective} lower bound {unit(s.lower_bound)} ({parts}); {gap}")


def _group_lines(e: Explanation) -> list[str]:
    if not e.groups:
        return ["groups: none (the plan has no compute modules)"]
    names = [d for d, _ in e.devices]
    head = f"  {'module':<8} {'device':<8} " + " ".join(f"{d:>11}" for d in names) + "  members"
    lines = ["groups (one compiled module each; predicted seconds per device, * = chosen)", head]
    for g in e.groups:
        cells = " ".join(f"{_ms(s) + ('*' if d == g.device else ' '):>11}" for d, s in g.seconds)
        where = f"  (in loop {g.loop})" if g.loop else ""
        lines.append(f"  {g.name:<8} {g.device or '-':<8} {cells}  {', '.join(g.members)}{where}")
    return lines
