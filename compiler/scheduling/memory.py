"""Live-data bookkeeping for devices with a memory capacity.

Model (also checked by ``validate``): a task's ``memory`` is resident on its device while
it runs, ``[start, finish)``; an edge's ``bytes`` stay on the producer's device from the
producer's finish until the consumer starts. While a schedule is being built the
consumer's start is unknown, so an edge is reserved until infinity and shrinks when its
consumer is placed: reservations only ever shrink, so whatever fits while building still
fits at the end.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from planc.compiler.scheduling.problem import Problem

__all__ = ["Ledger", "live_peak", "timing_fits"]

Interval = list[float]  # [lo, hi, amount], mutable so an edge's hi can shrink in place


def live_peak(intervals: list[Interval], lo: float, hi: float) -> float:
    """Largest total amount held at any time in ``[lo, hi)``."""
    events: list[tuple[float, float]] = []
    base = 0.0
    for a, b, x in intervals:
        if x == 0 or b <= lo or a >= hi or a >= b:
            continue
        if a <= lo:
            base += x
        else:
            events.append((a, x))
        if b < hi:
            events.append((b, -x))
    peak = cur = base
    for _, x in sorted(events, key=lambda ev: (ev[0], ev[1])):
        cur += x
        peak = max(peak, cur)
    return peak


class Ledger:
    """Per-device resident data while a schedule is being built (see module docstring)."""

    def __init__(self, prob: Problem) -> None:
        self.prob = prob
        self.held: list[list[Interval]] = [[] for _ in range(prob.p)]
        self.edge: list[Interval | None] = [None] * len(prob.edges)

    def fits(self, i: int, d: int, dev: list[int], start: float, finish: float) -> bool:
        """Whether task ``i`` may run on device ``d`` over ``[start, finish)``."""
        prob = self.prob
        cap = prob.capacity[d]
        if cap == math.inf:
            return True
        freed = sum(prob.edge_bytes[e] for u, e in prob.preds[i] if dev[u] == d)
        out = sum(prob.edge_bytes[e] for _, e in prob.succs[i])
        held = self.held[d]
        if prob.mem[i] and live_peak(held, start, finish) - freed + prob.mem[i] > cap:
            return False
        return live_peak(held, finish, math.inf) - freed + out <= cap

    def later_starts(self, d: int, after: float) -> list[float]:
        """Times after ``after`` at which data on device ``d`` is released."""
        return sorted({b for _, b, _ in self.held[d] if after < b < math.inf})

    def place(self, i: int, d: int, start: float, finish: float) -> None:
        prob = self.prob
        for _, e in prob.preds[i]:
            iv = self.edge[e]
            if iv is not None:
                iv[1] = start
        if prob.mem[i]:
            self.held[d].append([start, finish, prob.mem[i]])
        for _, e in prob.succs[i]:
            if prob.edge_bytes[e]:
                iv = [finish, math.inf, prob.edge_bytes[e]]
                self.edge[e] = iv
                self.held[d].append(iv)


def timing_fits(prob: Problem, dev: Sequence[int], start: Sequence[float], finish: Sequence[float]) -> bool:
    """Whether a complete schedule keeps every device's live data within its capacity."""
    held: list[list[Interval]] = [[] for _ in range(prob.p)]
    for i, d in enumerate(dev):
        held[d].append([start[i], finish[i], prob.mem[i]])
    for e, (u, v) in enumerate(prob.edges):
        held[dev[u]].append([finish[u], start[v], prob.edge_bytes[e]])
    return all(live_peak(held[d], -math.inf, math.inf) <= prob.capacity[d] * (1 + 1e-9) for d in range(prob.p))
