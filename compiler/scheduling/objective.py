"""The objectives and methods of scheduling, and the metrics that score a timing against an objective."""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence

from planc.compiler.scheduling.listsched import Timing
from planc.compiler.scheduling.problem import Problem

__all__ = ["REL_EPS", "Method", "Objective", "better", "energy_of", "period_of", "score_of"]

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
