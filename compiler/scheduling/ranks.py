"""Task priorities and bounds: upward/downward rank, PEFT's optimistic cost table, critical paths."""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence

from planc.compiler.scheduling.problem import Problem

__all__ = [
    "cp_min",
    "downward_rank",
    "mean_costs",
    "min_bottom_level",
    "optimistic_cost_table",
    "order_by",
    "upward_rank",
]


def mean_costs(prob: Problem) -> list[float]:
    """Mean computation cost of each task over the devices it can run on."""
    out = []
    for row in prob.cost:
        ok = [c for c in row if c < math.inf]
        out.append(sum(ok) / len(ok))
    return out


def upward_rank(prob: Problem, w: Sequence[float] | None = None, comm_scale: float = 1.0) -> list[float]:
    """HEFT's rank_u: ``w_i + max_j (c_ij + rank_u(j))`` with mean costs (Topcuoglu 2002, eq. 7)."""
    w = mean_costs(prob) if w is None else w
    cm = prob.comm_mean
    rank = [0.0] * prob.n
    for i in range(prob.n - 1, -1, -1):
        best = 0.0
        for j, e in prob.succs[i]:
            x = comm_scale * cm[e] + rank[j]
            best = max(best, x)
        rank[i] = w[i] + best
    return rank


def downward_rank(prob: Problem, w: Sequence[float] | None = None) -> list[float]:
    """rank_d: longest mean-cost path from an entry task to (excluding) task ``i``."""
    w = mean_costs(prob) if w is None else w
    cm = prob.comm_mean
    rank = [0.0] * prob.n
    for i in range(prob.n):
        best = 0.0
        for u, e in prob.preds[i]:
            x = rank[u] + w[u] + cm[e]
            best = max(best, x)
        rank[i] = best
    return rank


def optimistic_cost_table(prob: Problem) -> list[list[float]]:
    """PEFT's OCT (Arabnejad and Barbosa 2014, eq. 1).

    ``OCT(i, k) = max_j min_w (OCT(j, w) + cost(j, w) + [w != k] * c_ij)`` over successors
    ``j``, with the mean communication cost ``c_ij``; 0 for exit tasks.
    """
    n, p, cost, cm = prob.n, prob.p, prob.cost, prob.comm_mean
    table = [[0.0] * p for _ in range(n)]
    for i in range(n - 1, -1, -1):
        row = table[i]
        for j, e in prob.succs[i]:
            through = [table[j][w] + cost[j][w] for w in range(p)]
            off = min(through) + cm[e]
            for k in range(p):
                x = min(through[k], off)
                row[k] = max(row[k], x)
    return table


def min_bottom_level(prob: Problem) -> list[float]:
    """Longest path from task ``i`` to an exit, counting each task's cheapest cost and no transfers."""
    bl = [0.0] * prob.n
    for i in range(prob.n - 1, -1, -1):
        bl[i] = min(prob.cost[i]) + max((bl[j] for j, _ in prob.succs[i]), default=0.0)
    return bl


def cp_min(prob: Problem) -> float:
    """Sum of minimum costs along the critical path by minimum costs: the SLR denominator."""
    return max(min_bottom_level(prob), default=0.0)


def order_by(prob: Problem, priority: Sequence[float]) -> list[int]:
    """A topological order that always takes the ready task of highest priority (ties: lowest index)."""
    indeg = [len(x) for x in prob.preds]
    heap = [(-priority[i], i) for i in range(prob.n) if not indeg[i]]
    heapq.heapify(heap)
    out = []
    while heap:
        _, i = heapq.heappop(heap)
        out.append(i)
        for j, _ in prob.succs[i]:
            indeg[j] -= 1
            if not indeg[j]:
                heapq.heappush(heap, (-priority[j], j))
    return out
