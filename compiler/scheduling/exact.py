"""Exact branch and bound over semi-active schedules, for small graphs."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from planc.compiler.scheduling.listsched import ScheduleInfeasible, Timing
from planc.compiler.scheduling.memory import timing_fits
from planc.compiler.scheduling.objective import Objective, better, score_of
from planc.compiler.scheduling.problem import Problem

__all__ = ["ExactResult", "comm_oct", "exact"]

INF = math.inf
TOL = 1e-9


def comm_oct(prob: Problem) -> list[list[float]]:
    """Least time from task ``i`` finishing on device ``k`` to the end of the graph, counting
    the cheapest device of every later task and the real transfer time of each edge.

    A lower bound: it ignores that devices are shared.
    """
    n, p, cost, comm = prob.n, prob.p, prob.cost, prob.comm
    table = [[0.0] * p for _ in range(n)]
    for i in range(n - 1, -1, -1):
        row = table[i]
        for j, e in prob.succs[i]:
            through = [table[j][w] + cost[j][w] for w in range(p)]
            ce = comm[e]
            for k in range(p):
                x = min(through[w] + ce[k * p + w] for w in range(p))
                row[k] = max(row[k], x)
    return table


@dataclass
class ExactResult:
    """The best timing found, and whether the search finished (so it is optimal)."""

    timing: Timing
    proven: bool
    nodes: int


@dataclass
class _Search:
    prob: Problem
    objective: Objective
    best: Timing | None
    best_score: tuple[float, float]
    deadline: float
    max_nodes: int
    oct: list[list[float]] = field(default_factory=list)
    nodes: int = 0
    aborted: bool = False

    def __post_init__(self) -> None:
        prob = self.prob
        n, p = prob.n, prob.p
        self.oct = comm_oct(prob)
        self.dyn = [[(prob.watts[d] - prob.idle_watts[d]) * prob.cost[i][d] for d in range(p)] for i in range(n)]
        self.min_dyn = [min(r) for r in self.dyn]
        self.idle_total = sum(prob.idle_watts)
        self.min_cost = [min(r) for r in prob.cost]
        self.dev = [-1] * n
        self.eft = [[0.0] * p for _ in range(n)]
        self.start = [0.0] * n
        self.finish = [0.0] * n
        self.avail = [0.0] * p
        self.load = [0.0] * (p + p * p)
        self.indeg = [len(x) for x in prob.preds]
        self.ready = [i for i in range(n) if not self.indeg[i]]
        self.gaps: list[list[tuple[float, float]]] = [[] for _ in range(p)]
        # Some optimal schedule is active (no task fits an idle gap left before it) when the
        # objective only grows with finish times; live-data limits break that.
        self.active_only = not prob.memory_limited
        self.tail = [-1] * p  # last task appended to each device

    def ready_time(self, i: int, d: int) -> float:
        prob, p = self.prob, self.prob.p
        r = 0.0
        for u, e in prob.preds[i]:
            t = self.finish[u] + prob.comm[e][self.dev[u] * p + d]
            r = max(r, t)
        return r

    def span_bound(self, last: float, span: float) -> float:
        """Lower bound on the makespan of any completion of the current partial schedule.

        Earliest finish of every unscheduled task on every device, ignoring contention except
        that devices are busy until their current free time (and nothing starts before
        ``last``), plus the optimistic remaining path; and the total remaining work.
        """
        prob, p, avail, dev, finish = self.prob, self.prob.p, self.avail, self.dev, self.finish
        comm, cost, eft = prob.comm, prob.cost, self.eft
        floor = [max(a, last) for a in avail]
        lb = span
        rest = 0.0
        for i in range(prob.n):
            if dev[i] >= 0:
                continue
            base = list(floor)
            for u, e in prob.preds[i]:
                ce = comm[e]
                a = dev[u]
                if a >= 0:
                    fu, off = finish[u], a * p
                    for d in range(p):
                        t = fu + ce[off + d]
                        base[d] = max(base[d], t)
                else:
                    eu = eft[u]
                    for d in range(p):
                        t = min([eu[w] + ce[w * p + d] for w in range(p)])
                        base[d] = max(base[d], t)
            ci, oi = cost[i], self.oct[i]
            row = [base[d] + ci[d] for d in range(p)]
            eft[i] = row
            best = min([row[d] + oi[d] for d in range(p)])
            lb = max(lb, best)
            rest += self.min_cost[i]
        return max(lb, (sum(avail) + rest) / p)

    def bound(self, last: float, span: float, dyn: float) -> tuple[float, float]:
        ms = self.span_bound(last, span)
        obj = self.objective
        if obj is Objective.LATENCY:
            return (ms, ms)
        todo = [i for i in range(self.prob.n) if self.dev[i] < 0]
        if obj is Objective.ENERGY:
            rest = sum(self.min_dyn[i] for i in todo)
            return (self.prob.pue * (dyn + rest + self.idle_total * ms), ms)
        p = self.prob.p
        lb = max(self.load)
        for i in todo:
            lb = max(lb, min(self.load[d] + self.prob.cost[i][d] for d in range(p)))
        lb = max(lb, (sum(self.load[:p]) + sum(self.min_cost[i] for i in todo)) / p)
        return (lb, ms)

    def swappable(self, i: int, d: int, ready: float) -> bool:
        """Whether exit task ``i`` would follow exit task ``a > i`` on ``d`` that it could have
        preceded: swapping two such tasks changes nothing else, so only the increasing order
        is searched."""
        a = self.tail[d]
        if a < 0 or a < i or self.prob.succs[i] or self.prob.succs[a]:
            return False
        return ready <= self.start[a] + TOL * max(self.start[a], 1.0)

    def fits_gap(self, d: int, ready: float, dur: float) -> bool:
        for lo, hi in self.gaps[d]:
            if max(lo, ready) + dur < hi - TOL * max(hi, 1.0):
                return True
        return False

    def prunable(self, lb: tuple[float, float]) -> bool:
        b = self.best_score
        tol0 = TOL * max(abs(b[0]), 1.0)
        if lb[0] > b[0] + tol0:
            return True
        return lb[0] >= b[0] - tol0 and lb[1] >= b[1] - TOL * max(abs(b[1]), 1.0)

    def run(self, depth: int, prev: tuple[float, float, int], span: float, dyn: float) -> None:
        prob = self.prob
        if depth == prob.n:
            timing = Timing(list(self.dev), list(self.start), list(self.finish))
            if prob.memory_limited and not timing_fits(prob, *timing):
                return
            score = score_of(prob, timing, self.objective)
            if better(score, self.best_score):
                self.best, self.best_score = timing, score
            return
        self.nodes += 1
        if self.nodes > self.max_nodes or (self.nodes & 1023 == 0 and time.perf_counter() > self.deadline):
            self.aborted = True
            return
        last = prev[0]
        if self.prunable(self.bound(last, span, dyn)):
            return
        p = prob.p
        children = []
        for i in self.ready:
            for d in range(p):
                w = prob.cost[i][d]
                if w == INF:
                    continue
                r = self.ready_time(i, d)
                s = max(self.avail[d], r)
                if _precedes(s, s + w, i, prev):
                    continue  # generate each semi-active schedule once: in (start, finish, index) order
                if self.active_only and self.fits_gap(d, r, w):
                    continue  # not active: the task could run in an idle gap already left on d
                if self.active_only and self.swappable(i, d, r):
                    continue
                children.append((s + w + self.oct[i][d], s, i, d))
        children.sort()
        for _, s, i, d in children:
            self.descend(depth, i, d, s, span, dyn)
            if self.aborted:
                return

    def descend(self, depth: int, i: int, d: int, s: float, span: float, dyn: float) -> None:
        prob, p = self.prob, self.prob.p
        f = s + prob.cost[i][d]
        old_avail, old_tail = self.avail[d], self.tail[d]
        self.tail[d] = i
        gap = s > old_avail
        if gap:
            self.gaps[d].append((old_avail, s))
        self.dev[i], self.start[i], self.finish[i], self.avail[d] = d, s, f, f
        self.load[d] += prob.cost[i][d]
        touched = []
        for u, e in prob.preds[i]:
            a = self.dev[u]
            if a != d:
                k = p + a * p + d
                self.load[k] += prob.comm[e][a * p + d]
                touched.append((k, prob.comm[e][a * p + d]))
        ready = self.ready
        pos = ready.index(i)
        ready.pop(pos)
        released = []
        for j, _ in prob.succs[i]:
            self.indeg[j] -= 1
            if not self.indeg[j]:
                ready.append(j)
                released.append(j)
        self.run(depth + 1, (s, f, i), max(span, f), dyn + self.dyn[i][d])
        for j in released:
            ready.remove(j)
        for j, _ in prob.succs[i]:
            self.indeg[j] += 1
        ready.insert(pos, i)
        for k, x in touched:
            self.load[k] -= x
        self.load[d] -= prob.cost[i][d]
        self.dev[i], self.avail[d], self.tail[d] = -1, old_avail, old_tail
        if gap:
            self.gaps[d].pop()


def _precedes(s: float, f: float, i: int, prev: tuple[float, float, int]) -> bool:
    """Whether ``(s, f, i) < prev`` lexicographically, times compared with a tolerance."""
    for x, y in ((s, prev[0]), (f, prev[1])):
        tol = TOL * max(abs(y), 1.0)
        if x < y - tol:
            return True
        if x > y + tol:
            return False
    return i < prev[2]


def exact(prob: Problem, objective: Objective, incumbent: Timing | None, *, budget_s: float | None = None,
          max_nodes: int | None = None) -> ExactResult:
    """Minimize ``(objective, makespan)`` exactly by branch and bound.

    Branching appends a ready task to a device at its earliest start, in non-decreasing
    (start, finish, index) order, so every semi-active schedule (no task can start earlier
    without reordering a device) is generated once. Of those only active ones are searched
    (no task fits an idle gap left earlier on its device), and of two exit tasks that could
    swap places on a device only one order: some optimal schedule is of that kind, since
    every objective only grows with finish times, so the search is exact (to 1e-9
    relative). Bounds: the optimistic finish and remaining path of every unscheduled task
    (real transfer times, cheapest devices, devices busy until their free time), the
    remaining work over the devices, and for energy and throughput the cheapest remaining
    energy and the device/link loads. ``incumbent`` (the best heuristic schedule, or None)
    seeds the upper bound. With memory capacities the active/swap reductions are off and
    only semi-active schedules that fit are considered: optimality is relative to them.
    ``budget_s``/``max_nodes`` stop the search early; ``proven`` then is False and the best
    schedule found is returned.
    """
    deadline = INF if budget_s is None else time.perf_counter() + budget_s
    score = (INF, INF) if incumbent is None else score_of(prob, incumbent, objective)
    search = _Search(prob, objective, incumbent, score, deadline, max_nodes if max_nodes is not None else 1 << 62)
    search.run(0, (0.0, 0.0, -1), 0.0, 0.0)
    if search.best is None:
        raise ScheduleInfeasible("no schedule keeps the devices' live data within their memory")
    return ExactResult(search.best, not search.aborted, search.nodes)
