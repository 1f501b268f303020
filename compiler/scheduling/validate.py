"""Independent check that a Schedule obeys every constraint of its graph and platform."""

from __future__ import annotations

import enum
import itertools
import math
from collections.abc import Hashable

import networkx as nx
from planc.compiler.scheduling.memory import live_peak
from planc.compiler.scheduling.platform import Platform
from planc.compiler.scheduling.schedule import Schedule

__all__ = ["Constraint", "ScheduleViolation", "validate"]


class Constraint(enum.Enum):
    """The constraint a schedule can violate."""

    COMPLETENESS = "completeness"  # every task placed once, on a known device
    COST = "cost"                  # costs, sizes and times non-negative; duration = cost
    PLACEMENT = "placement"        # no task on a device where its cost is infinite
    PRECEDENCE = "precedence"      # finish(u) + transfer(u, v) <= start(v) on every edge
    EXCLUSIVITY = "exclusivity"    # a device runs one task at a time
    MEMORY = "memory"              # task memory and live data fit the device's capacity
    METRICS = "metrics"            # the recorded makespan matches the placements


class ScheduleViolation(ValueError):
    """A schedule breaks a constraint; ``constraint`` says which."""

    def __init__(self, constraint: Constraint, message: str) -> None:
        super().__init__(f"{constraint.value} violated: {message}")
        self.constraint = constraint


def _nonneg(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or value < 0:
        raise ScheduleViolation(Constraint.COST, f"{what} must be a number >= 0, got {value!r}")
    return float(value)


def _transfer(graph: nx.DiGraph, platform: Platform, u: Hashable, v: Hashable, a: str, b: str) -> float:
    attrs = graph.edges[u, v]
    nbytes = _nonneg(attrs.get("bytes", 0.0), f"edge {u!r} -> {v!r}: bytes")
    if "comm" in attrs:
        c = _nonneg(attrs["comm"], f"edge {u!r} -> {v!r}: comm")
        return 0.0 if a == b else c
    return platform.comm_time(nbytes, a, b)


def _check_tasks(graph: nx.DiGraph, platform: Platform, sched: Schedule, tol: float) -> None:
    missing = [t for t in graph.nodes if t not in sched.placements]
    extra = [t for t in sched.placements if t not in graph]
    if missing or extra:
        what = f"task {missing[0]!r} is not placed" if missing else f"task {extra[0]!r} is not in the graph"
        raise ScheduleViolation(Constraint.COMPLETENESS, what)
    for t, pl in sched.placements.items():
        if pl.device not in platform.names:
            raise ScheduleViolation(Constraint.COMPLETENESS, f"task {t!r} is on unknown device {pl.device!r}")
        costs = graph.nodes[t].get("cost", {})
        cost = _nonneg(costs.get(pl.device, math.inf), f"task {t!r}: cost on {pl.device!r}")
        if cost == math.inf:
            raise ScheduleViolation(Constraint.PLACEMENT, f"task {t!r} cannot run on {pl.device!r} (cost inf)")
        mem = _nonneg(graph.nodes[t].get("memory", 0.0), f"task {t!r}: memory")
        if mem > platform.device(pl.device).memory:
            raise ScheduleViolation(Constraint.MEMORY, f"task {t!r} needs {mem:g} bytes, device {pl.device!r} "
                                    f"has {platform.device(pl.device).memory:g}")
        _nonneg(pl.start, f"task {t!r}: start")
        if abs(pl.finish - pl.start - cost) > tol:
            raise ScheduleViolation(Constraint.COST, f"task {t!r} runs {pl.finish - pl.start:g} s on "
                                    f"{pl.device!r}, its cost there is {cost:g} s")


def _check_edges(graph: nx.DiGraph, platform: Platform, sched: Schedule, tol: float) -> None:
    for u, v in graph.edges:
        a, b = sched[u], sched[v]
        c = _transfer(graph, platform, u, v, a.device, b.device)
        if a.finish + c > b.start + tol:
            raise ScheduleViolation(Constraint.PRECEDENCE, f"edge {u!r} -> {v!r}: {u!r} finishes at {a.finish:g} "
                                    f"+ transfer {c:g} s > start of {v!r} at {b.start:g}")


def _check_devices(sched: Schedule, tol: float) -> None:
    for name in sched.order:
        runs = sorted((pl for pl in sched.placements.values() if pl.device == name),
                      key=lambda pl: (pl.start, pl.finish))
        for x, y in itertools.pairwise(runs):
            if x.finish > y.start + tol and y.finish > y.start and x.finish > x.start:
                raise ScheduleViolation(Constraint.EXCLUSIVITY, f"tasks {x.task!r} [{x.start:g}, {x.finish:g}) and "
                                        f"{y.task!r} [{y.start:g}, {y.finish:g}) overlap on {name!r}")


def _check_memory(graph: nx.DiGraph, platform: Platform, sched: Schedule) -> None:
    held: dict[str, list[list[float]]] = {d: [] for d in platform.names}
    for t, pl in sched.placements.items():
        held[pl.device].append([pl.start, pl.finish, float(graph.nodes[t].get("memory", 0.0))])
        out = [(float(a.get("bytes", 0.0)), sched[v].start) for _, v, a in graph.out_edges(t, data=True)]
        if out:
            held[pl.device].append([pl.finish, max(s for _, s in out), max(b for b, _ in out)])
    for dev in platform.devices:
        peak = live_peak(held[dev.name], -math.inf, math.inf)
        if peak > dev.memory * (1 + 1e-9):
            raise ScheduleViolation(Constraint.MEMORY, f"device {dev.name!r} holds {peak:g} bytes of live data "
                                    f"at once, its capacity is {dev.memory:g}")


def validate(graph: nx.DiGraph, platform: Platform, schedule: Schedule) -> None:
    """Raise ScheduleViolation naming the first broken constraint, or return None.

    Checked: every task placed once on a known device (completeness); costs, sizes and
    start times non-negative, each task runs exactly its cost (cost); no task where its
    cost is infinite (placement); ``finish(u) + transfer(u, v) <= start(v)`` on every edge
    (precedence); no two tasks overlap on a device (exclusivity); each task's ``memory``
    fits its device, and at no time does a device hold more live data than its capacity
    (memory; live data = the ``memory`` of the task running there plus the output of every
    task that ran there and whose last consumer has not started yet, an output being as
    large as the largest ``bytes`` of its out-edges); the
    recorded makespan is the last finish (metrics). Times compare with a relative
    tolerance of 1e-9.
    """
    span = max((pl.finish for pl in schedule.placements.values()), default=0.0)
    tol = 1e-9 * max(1.0, abs(span))
    _check_tasks(graph, platform, schedule, tol)
    _check_edges(graph, platform, schedule, tol)
    _check_devices(schedule, tol)
    _check_memory(graph, platform, schedule)
    if abs(schedule.makespan - span) > tol:
        raise ScheduleViolation(Constraint.METRICS, f"makespan {schedule.makespan:g} != last finish {span:g}")
