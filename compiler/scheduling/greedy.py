"""Greedy earliest-start list scheduling: the simplest baseline."""

from __future__ import annotations

import math

from planc.compiler.scheduling.listsched import ScheduleInfeasible, Timeline, Timing, data_ready, memory_slot
from planc.compiler.scheduling.memory import Ledger
from planc.compiler.scheduling.problem import Problem

__all__ = ["greedy"]


def greedy(prob: Problem) -> Timing:
    """Repeatedly start the (ready task, device) pair that can start earliest (ties: earliest
    finish, then lowest index); tasks are appended to devices, never inserted into gaps.

    Quadratic in the number of tasks; a baseline for graphs of up to a few thousand tasks.
    """
    n, p, cost = prob.n, prob.p, prob.cost
    dev, start, finish = [0] * n, [0.0] * n, [0.0] * n
    tl = Timeline(p)
    ledger = Ledger(prob) if prob.memory_limited else None
    indeg = [len(x) for x in prob.preds]
    ready = [i for i in range(n) if not indeg[i]]
    while ready:
        best = (math.inf, math.inf, n, -1)
        for i in ready:
            for d in range(p):
                w = cost[i][d]
                if w == math.inf:
                    continue
                r = data_ready(prob, i, d, dev, finish)
                if ledger is None:
                    s = tl.slot(d, r, w, insertion=False)
                else:
                    s = memory_slot(prob, ledger, tl, i, d, r, False)
                if (s, s + w, i) < best[:3]:
                    best = (s, s + w, i, d)
        s, f, i, d = best
        if s == math.inf:
            raise ScheduleInfeasible(f"no ready task fits any device's memory (first: {prob.tasks[ready[0]]!r})")
        dev[i], start[i], finish[i] = d, s, f
        tl.add(d, s, f)
        if ledger is not None:
            ledger.place(i, d, s, f)
        ready.remove(i)
        for j, _ in prob.succs[i]:
            indeg[j] -= 1
            if not indeg[j]:
                ready.append(j)
    return Timing(dev, start, finish)
