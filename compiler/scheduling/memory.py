"""Live-data bookkeeping for devices with a memory capacity.

Model (also checked by ``validate``): a task's ``memory`` is resident on its device while
it runs, ``[start, finish)``; its output stays on that device from its finish until its
last consumer has started. The output's size is the largest ``bytes`` of its out-edges
(fan-out edges usually carry the same value). While a schedule is being built the last
consumer's start is unknown, so the output is reserved until infinity and shrinks when
the last consumer is placed: reservations only ever shrink, so whatever fits while
building still fits at the end.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from planc.compiler.scheduling.problem import Problem

__all__ = ["Ledger", "live_peak", "output_bytes", "timing_fits"]

Interval = list[float]  # [lo, hi, amount], mutable so an output's hi can shrink in place


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
    for _, x in sorted(events):
        cur += x
        peak = max(peak, cur)
    return peak


def output_bytes(prob: Problem) -> list[float]:
    """Size of each task's output: the largest ``bytes`` of its out-edges."""
    return [max((prob.edge_bytes[e] for _, e in prob.succs[i]), default=0.0) for i in range(prob.n)]


class Ledger:
    """Per-device resident data while a schedule is being built (see module docstring)."""

    def __init__(self, prob: Problem) -> None:
        self.prob = prob
        self.out = output_bytes(prob)
        self.held: list[list[Interval]] = [[] for _ in range(prob.p)]
        self.output: list[Interval | None] = [None] * prob.n
        self.pending = [len(s) for s in prob.succs]  # consumers not placed yet
        self.latest = [0.0] * prob.n                 # latest start of a placed consumer

    def _released(self, i: int, start: float) -> dict[int, float]:
        """Outputs (by id) whose last consumer is ``i``, with the time they would be freed."""
        return {id(iv): max(self.latest[u], start) for u, _ in self.prob.preds[i]
                if self.pending[u] == 1 and (iv := self.output[u]) is not None}

    def fits(self, i: int, d: int, start: float, finish: float) -> bool:
        """Whether task ``i`` may run on device ``d`` over ``[start, finish)``."""
        prob = self.prob
        cap = prob.capacity[d]
        if cap == math.inf:
            return True
        live = [iv for iv in self.held[d] if iv[1] > start]
        extra = prob.mem[i] + (self.out[i] if prob.succs[i] else 0.0)
        if sum(iv[2] for iv in live) + extra <= cap:  # even all at once
            return True
        freed = self._released(i, start)
        held = [[a, freed.get(id(iv), b), x] for iv in live for a, b, x in (iv,)]
        held.append([start, finish, prob.mem[i]])
        if prob.succs[i]:
            held.append([finish, math.inf, self.out[i]])
        return live_peak(held, start, math.inf) <= cap

    def later_starts(self, d: int, after: float) -> list[float]:
        """Times after ``after`` at which data on device ``d`` is released."""
        return sorted({b for _, b, _ in self.held[d] if after < b < math.inf})

    def place(self, i: int, d: int, start: float, finish: float) -> None:
        prob = self.prob
        for u, _ in prob.preds[i]:
            self.pending[u] -= 1
            self.latest[u] = max(self.latest[u], start)
            iv = self.output[u]
            if iv is not None and not self.pending[u]:
                iv[1] = self.latest[u]
        if prob.mem[i]:
            self.held[d].append([start, finish, prob.mem[i]])
        if prob.succs[i] and self.out[i]:
            iv = [finish, math.inf, self.out[i]]
            self.output[i] = iv
            self.held[d].append(iv)


def timing_fits(prob: Problem, dev: Sequence[int], start: Sequence[float], finish: Sequence[float]) -> bool:
    """Whether a complete schedule keeps every device's live data within its capacity."""
    held: list[list[Interval]] = [[] for _ in range(prob.p)]
    out = output_bytes(prob)
    for i, d in enumerate(dev):
        held[d].append([start[i], finish[i], prob.mem[i]])
        if prob.succs[i]:
            held[d].append([finish[i], max(start[j] for j, _ in prob.succs[i]), out[i]])
    return all(live_peak(held[d], -math.inf, math.inf) <= prob.capacity[d] * (1 + 1e-9) for d in range(prob.p))
