"""The Schedule record: where and when each task runs, with the metrics every schedule carries."""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from planc.compiler.scheduling.bounds import Bounds
from planc.compiler.scheduling.listsched import Timing
from planc.compiler.scheduling.objective import Method, Objective, better, energy_of, period_of, score_of
from planc.compiler.scheduling.problem import Problem

__all__ = ["Method", "Objective", "Placement", "Schedule", "better", "energy_of", "period_of", "score_of"]

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
