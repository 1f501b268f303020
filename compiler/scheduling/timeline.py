"""Busy intervals of the devices, for insertion-based list scheduling.

Each device keeps its intervals sorted in blocks of at most ``2 * BLOCK``, with the
largest idle gap inside each block, so the search for the first gap that fits skips
whole blocks: O(BLOCK + n / BLOCK) per query instead of a scan of every gap.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from operator import sub

__all__ = ["Timeline"]

BLOCK = 32


def _widest(starts: list[float], finishes: list[float]) -> float:
    return max(map(sub, starts[1:], finishes[:-1]), default=-1.0)


class _Lane:
    """The intervals of one device."""

    __slots__ = ("end", "fins", "firsts", "lasts", "starts", "widest")

    def __init__(self) -> None:
        self.starts: list[list[float]] = []  # per block, sorted
        self.fins: list[list[float]] = []
        self.widest: list[float] = []  # largest gap between intervals of a block (-1: none)
        self.firsts: list[float] = []  # first start of each block
        self.lasts: list[float] = []   # last finish of each block
        self.end = 0.0

    def slot(self, ready: float, dur: float) -> float:
        if not self.lasts or self.end <= ready:
            return ready
        lasts, widest = self.lasts, self.widest
        b = bisect_right(lasts, ready)  # first block still busy after ready
        sts, fin = self.starts[b], self.fins[b]
        k = bisect_right(fin, ready)    # the interval before k ended by ready
        if ready + dur <= sts[k]:
            return ready
        if widest[b] >= dur:
            for j in range(k + 1, len(fin)):
                t = fin[j - 1]
                if t + dur <= sts[j]:
                    return t
        t = lasts[b]
        for c in range(b + 1, len(lasts)):
            sts = self.starts[c]
            if t + dur <= sts[0]:
                return t
            if widest[c] >= dur:
                fin = self.fins[c]
                for j in range(1, len(fin)):
                    t = fin[j - 1]
                    if t + dur <= sts[j]:
                        return t
            t = lasts[c]
        return t

    def add(self, start: float, finish: float) -> None:
        if not self.lasts:
            self.starts.append([start])
            self.fins.append([finish])
            self.widest.append(-1.0)
            self.firsts.append(start)
            self.lasts.append(finish)
            self.end = finish
            return
        if start >= self.end:
            b = len(self.lasts) - 1
            self.widest[b] = max(self.widest[b], start - self.end)
            self.starts[b].append(start)
            self.fins[b].append(finish)
            self.lasts[b] = self.end = finish
        else:
            b = max(bisect_right(self.firsts, start) - 1, 0)
            sts, fin = self.starts[b], self.fins[b]
            # Ties on the start (zero-length intervals) go where the finishes stay sorted too.
            k = bisect_right(sts, start) if finish > start else bisect_left(sts, start)
            sts.insert(k, start)
            fin.insert(k, finish)
            self.firsts[b], self.lasts[b] = sts[0], fin[-1]
            self.widest[b] = _widest(sts, fin)
        if len(self.starts[b]) > 2 * BLOCK:
            self._split(b)

    def _split(self, b: int) -> None:
        sts, fin = self.starts[b], self.fins[b]
        s1, s2, f1, f2 = sts[:BLOCK], sts[BLOCK:], fin[:BLOCK], fin[BLOCK:]
        self.starts[b:b + 1] = [s1, s2]
        self.fins[b:b + 1] = [f1, f2]
        self.widest[b:b + 1] = [_widest(s1, f1), _widest(s2, f2)]
        self.firsts[b:b + 1] = [s1[0], s2[0]]
        self.lasts[b:b + 1] = [f1[-1], f2[-1]]


class Timeline:
    """Busy intervals of each device (see the module docstring)."""

    __slots__ = ("lanes",)

    def __init__(self, p: int) -> None:
        self.lanes = [_Lane() for _ in range(p)]

    def slot(self, d: int, ready: float, dur: float, insertion: bool = True) -> float:
        """Earliest start >= ``ready`` of an idle gap of length ``dur`` on device ``d``
        (without ``insertion``: after the device's last task)."""
        lane = self.lanes[d]
        if not insertion:
            return max(ready, lane.end)
        return lane.slot(ready, dur)

    def add(self, d: int, start: float, finish: float) -> None:
        """Mark device ``d`` busy over ``[start, finish)`` (an idle gap found by ``slot``)."""
        self.lanes[d].add(start, finish)
