"""The Schedule record, the objectives and methods, and the metrics every schedule carries."""

from __future__ import annotations

import enum
import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

from planc.compiler.scheduling.listsched import Timing
from planc.compiler.scheduling.problem import Problem

if TYPE_CHECKING:
    from planc.compiler.scheduling.bounds import Bounds

__all__ = ["Method", "Objective", "Placement", "Schedule", "better", "energy_of", "period_of", "score_of"]

REL_EPS = 1e-9


class _Parsable(enum.Enum):
    @classmethod
    def parse(cls, value: object) -> _Parsable:
        """The member named by ``value`` (a member or its string); error lists the choices."""
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            for member in cls:
                if member.value == value.strip().lower():
                    return member
        kind = cls.__name__.lower()
        raise ValueError(f"unknown {kind} {value!r}, expected one of: {', '.join(m.value for m in cls)}")


class Objective(_Parsable):
    """What a schedule minimizes; ties are broken by the makespan."""

    LATENCY = "latency"        # makespan of one run
    ENERGY = "energy"          # joules of one run, times the site's PUE
    THROUGHPUT = "throughput"  # steady-state period when successive runs are pipelined


class Method(_Parsable):
    """Which algorithm builds the schedule."""

    AUTO = "auto"      # exact for small graphs, ours otherwise
    HEFT = "heft"      # Topcuoglu, Hariri and Wu 2002
    PEFT = "peft"      # Arabnejad and Barbosa 2014
    GREEDY = "greedy"  # earliest-start list scheduling
    EXACT = "exact"    # branch and bound; exponential
    OURS = "ours"      # portfolio of list schedules + iterated local search
    CPSAT = "cpsat"    # OR-Tools CP-SAT warm-started with ours


@dataclass(frozen=True, slots=True)
class Placement:
    """Where and when one task runs."""

    task: Hashable
    device: str
    start: float
    finish: float


@dataclass(frozen=True, slots=True, eq=False)
class Schedule:
    """A complete schedule of a task graph on a platform.

    Attributes:
        placements: task -> Placement, in the graph's topological order.
        order: device -> tasks on it by start time (every device is listed).
        makespan: finish time of the last task (seconds; the graph starts at 0).
        energy: joules of one run: busy power times busy time plus idle power times idle
            time within the makespan, summed over devices, times the platform's PUE.
        period: steady-state period if runs are pipelined with this placement: the busiest
            device's or link's busy time per run (seconds).
        objective: what the method minimized. method: the method that built it.
        bounds: lower bounds on the objective's value (None: not computed, e.g. baselines).
    """

    placements: Mapping[Hashable, Placement]
    order: Mapping[str, tuple[Hashable, ...]]
    makespan: float
    energy: float
    period: float
    objective: Objective
    method: Method
    bounds: Bounds | None = None

    def __getitem__(self, task: Hashable) -> Placement:
        return self.placements[task]

    def device_of(self, task: Hashable) -> str:
        return self.placements[task].device

    @property
    def score(self) -> tuple[float, float]:
        """``(objective value, makespan)``; smaller is better."""
        primary = {Objective.LATENCY: self.makespan, Objective.ENERGY: self.energy,
                   Objective.THROUGHPUT: self.period}[self.objective]
        return (primary, self.makespan)

    @property
    def gap(self) -> float:
        """How far the objective's value may be above the optimum, relative (0: proven
        optimal; inf: no bound known)."""
        return math.inf if self.bounds is None else self.bounds.gap(self.score[0])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Schedule):
            return NotImplemented
        return (dict(self.placements) == dict(other.placements) and self.objective == other.objective
                and self.method == other.method)

    @classmethod
    def build(cls, prob: Problem, timing: Timing, objective: Objective, method: Method,
              bounds: Bounds | None = None) -> Schedule:
        """Wrap a decoder's timing as a Schedule with all metrics filled in."""
        dev, start, finish = timing
        placements = {t: Placement(t, prob.names[dev[i]], start[i], finish[i]) for i, t in enumerate(prob.tasks)}
        by_dev: dict[str, list[int]] = {name: [] for name in prob.names}
        for i in sorted(range(prob.n), key=lambda i: (start[i], finish[i], i)):
            by_dev[prob.names[dev[i]]].append(i)
        order = {d: tuple(prob.tasks[i] for i in ids) for d, ids in by_dev.items()}
        return cls(
            placements=MappingProxyType(placements), order=MappingProxyType(order),
            makespan=timing.makespan, energy=energy_of(prob, timing), period=period_of(prob, dev),
            objective=objective, method=method, bounds=bounds,
        )


def energy_of(prob: Problem, timing: Timing) -> float:
    """Joules of one run under ``timing`` (see Schedule.energy)."""
    busy = [0.0] * prob.p
    for i, d in enumerate(timing.dev):
        busy[d] += prob.cost[i][d]
    span = timing.makespan
    joules = sum(prob.watts[d] * busy[d] + prob.idle_watts[d] * max(span - busy[d], 0.0) for d in range(prob.p))
    return prob.pue * joules


def period_of(prob: Problem, dev: Sequence[int]) -> float:
    """Steady-state period of placement ``dev``: max busy time of any device or directed link."""
    p = prob.p
    load = [0.0] * (p + p * p)
    for i, d in enumerate(dev):
        load[d] += prob.cost[i][d]
    for e, (u, v) in enumerate(prob.edges):
        a, b = dev[u], dev[v]
        if a != b:
            load[p + a * p + b] += prob.comm[e][a * p + b]
    return max(load)


def score_of(prob: Problem, timing: Timing, objective: Objective) -> tuple[float, float]:
    """``(objective value, makespan)`` of a timing."""
    span = timing.makespan
    if objective is Objective.LATENCY:
        return (span, span)
    if objective is Objective.ENERGY:
        return (energy_of(prob, timing), span)
    return (period_of(prob, timing.dev), span)


def better(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Whether score ``a`` is strictly better than ``b`` beyond rounding noise."""
    for x, y in zip(a, b):
        if x == y:
            continue
        if math.isinf(x) or math.isinf(y):
            return x < y
        tol = REL_EPS * max(abs(x), abs(y), 1e-300)
        if x < y - tol:
            return True
        if x > y + tol:
            return False
    return False
