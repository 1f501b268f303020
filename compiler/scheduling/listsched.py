"""List-scheduling decoders: turn a priority order (and maybe a placement) into start times."""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from typing import NamedTuple

from planc.compiler.scheduling.memory import Ledger
from planc.compiler.scheduling.problem import Problem, ScheduleInputError
from planc.compiler.scheduling.timeline import Timeline

__all__ = [
    "ScheduleInfeasible",
    "Timeline",
    "Timing",
    "data_ready",
    "eft_decode",
    "fixed_decode",
    "memory_slot",
]

INF = math.inf


class ScheduleInfeasible(ScheduleInputError):
    """No placement satisfies the memory capacities (the data pending on every device is too large)."""


class Timing(NamedTuple):
    """Device, start and finish per task index."""

    dev: list[int]
    start: list[float]
    finish: list[float]

    @property
    def makespan(self) -> float:
        return max(self.finish, default=0.0)


def data_ready(prob: Problem, i: int, d: int, dev: Sequence[int], finish: Sequence[float]) -> float:
    """Time all inputs of task ``i`` can be on device ``d``."""
    p, comm = prob.p, prob.comm
    r = 0.0
    for u, e in prob.preds[i]:
        t = finish[u] + comm[e][dev[u] * p + d]
        r = max(r, t)
    return r


def memory_slot(prob: Problem, ledger: Ledger, tl: Timeline, i: int, d: int, ready: float,
                insertion: bool) -> float:
    """Earliest start of ``i`` on ``d`` that fits the device's memory (inf if none)."""
    w = prob.cost[i][d]
    s = tl.slot(d, ready, w, insertion)
    if ledger.fits(i, d, s, s + w):
        return s
    for t in ledger.later_starts(d, s):
        s = tl.slot(d, t, w, insertion)
        if ledger.fits(i, d, s, s + w):
            return s
    return INF


def _memory_decode(prob: Problem, order: Sequence[int], fixed: list[int] | None,
                   oct_table: Sequence[Sequence[float]] | None, insertion: bool) -> Timing:
    """List scheduling under memory capacities: the earliest task of ``order`` that is
    ready and fits some device (``fixed[i]`` only, if given) goes next, so a task blocked
    by pending data waits while others run and release theirs."""
    n, p, cost = prob.n, prob.p, prob.cost
    dev = list(fixed) if fixed is not None else [0] * n
    start, finish = [0.0] * n, [0.0] * n
    tl, ledger = Timeline(p), Ledger(prob)
    rank = {t: k for k, t in enumerate(order)}
    waiting = [len(x) for x in prob.preds]
    ready = [(rank[i], i) for i in range(n) if not waiting[i]]
    heapq.heapify(ready)
    while ready:
        blocked = []
        best: tuple[tuple[float, float], int, float, float] | None = None
        while ready and best is None:
            k, i = heapq.heappop(ready)
            for d in (fixed[i],) if fixed is not None else range(p):
                if cost[i][d] == INF:
                    continue
                s = memory_slot(prob, ledger, tl, i, d, data_ready(prob, i, d, dev, finish), insertion)
                f = s + cost[i][d]
                key = (f if oct_table is None else f + oct_table[i][d], f)
                if s < INF and (best is None or key < best[0]):
                    best = (key, d, s, f)
            if best is None:
                blocked.append((k, i))
        if best is None:
            raise ScheduleInfeasible(f"no waiting task fits a device's memory (first: "
                                     f"{prob.tasks[blocked[0][1]]!r}): the pending outputs exceed the capacities")
        for item in blocked:
            heapq.heappush(ready, item)
        _, d, s, f = best
        dev[i], start[i], finish[i] = d, s, f
        tl.add(d, s, f)
        ledger.place(i, d, s, f)
        for j, _ in prob.succs[i]:
            waiting[j] -= 1
            if not waiting[j]:
                heapq.heappush(ready, (rank[j], j))
    return Timing(dev, start, finish)


def eft_decode(prob: Problem, order: Sequence[int], *, oct_table: Sequence[Sequence[float]] | None = None,
               insertion: bool = True) -> Timing:
    """Place tasks in ``order`` (a topological order) on the device minimizing EFT (+ ``oct_table``).

    This is HEFT's processor-selection phase (``oct_table=None``) and PEFT's (its OCT).
    """
    if prob.memory_limited:
        return _memory_decode(prob, order, None, oct_table, insertion)
    n, p, cost, preds, comm = prob.n, prob.p, prob.cost, prob.preds, prob.comm
    dev, start, finish = [0] * n, [0.0] * n, [0.0] * n
    tl = Timeline(p)
    for i in order:
        ci, pr = cost[i], preds[i]
        best_key = best_s = best_f = INF
        best_d = -1
        for d in range(p):
            w = ci[d]
            if w == INF:
                continue
            r = 0.0
            for u, e in pr:
                t = finish[u] + comm[e][dev[u] * p + d]
                r = max(r, t)
            s = tl.slot(d, r, w, insertion)
            f = s + w
            key = f if oct_table is None else f + oct_table[i][d]
            if key < best_key or (key == best_key and f < best_f):
                best_key, best_d, best_s, best_f = key, d, s, f
        dev[i], start[i], finish[i] = best_d, best_s, best_f
        tl.add(best_d, best_s, best_f)
    return Timing(dev, start, finish)


def fixed_decode(prob: Problem, order: Sequence[int], dev: Sequence[int], *, insertion: bool = True) -> Timing:
    """Start times for a fixed placement ``dev``, placing tasks in ``order`` (topological)."""
    n, p, cost, preds, comm = prob.n, prob.p, prob.cost, prob.preds, prob.comm
    devl = list(dev)
    start, finish = [0.0] * n, [0.0] * n
    if prob.memory_limited:
        return _memory_decode(prob, order, devl, None, insertion)
    if not insertion:
        avail = [0.0] * p
        for i in order:
            d = devl[i]
            r = avail[d]
            for u, e in preds[i]:
                t = finish[u] + comm[e][devl[u] * p + d]
                r = max(r, t)
            start[i] = r
            finish[i] = avail[d] = r + cost[i][d]
        return Timing(devl, start, finish)
    tl = Timeline(p)
    for i in order:
        d = devl[i]
        r = 0.0
        for u, e in preds[i]:
            t = finish[u] + comm[e][devl[u] * p + d]
            r = max(r, t)
        s = tl.slot(d, r, cost[i][d])
        start[i], finish[i] = s, s + cost[i][d]
        tl.add(d, s, finish[i])
    return Timing(devl, start, finish)

