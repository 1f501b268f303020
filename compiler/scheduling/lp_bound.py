"""A makespan lower bound for heterogeneous devices with transfers: one LP over device classes.

Devices are grouped into classes of interchangeable ones (``units``: same costs, power,
memory, free transfers among them); a class of k devices holds k tasks at once. The LP lets
each task split fractionally across classes (``x[i, a]``, summing to 1) and asks for the
least makespan C such that

- every task starts at ``s_i >= 0``, lasts ``sum_a cost[i, a] x[i, a]`` and ends by C;
- an edge (u, v) delays v by u's duration plus the transfer, priced by a transport plan
  between u's and v's fractional placements (``z[e, a, b] >= 0`` with row sums ``x[u, a]``
  and column sums ``x[v, b]``; on integral placements exactly the real transfer);
- each class's load fits: ``sum_i cost[i, a] x[i, a] <= k_a C``;
- energetic cuts per class: the tasks that cannot start before t (their head, the cheapest
  chain before them) load class a by ``L``: ``C >= t + L / k_a + (least tail among them)``,
  and the mirror image with tails.

Every real schedule is a feasible point (x integral), so the optimum is a lower bound: at
least the critical path (one task can no longer be everywhere at its cheapest while all its
work also lands on the cheapest class) and at least the load LP of ``bounds``. Big models
(more than ``MAX_COLUMNS`` transport columns) drop the transfers, and the cuts above
``MAX_CUTS``.
"""

from __future__ import annotations

import math

import numpy as np
from planc.compiler.scheduling.problem import Problem
from planc.compiler.scheduling.units import units_of

__all__ = ["MAX_COLUMNS", "precedence_lp"]

MAX_COLUMNS = 60_000  # LP columns (placements, starts, transport) above which transfers are dropped
MAX_CUTS = 4_000  # energetic rows per model


def _heads_tails(prob: Problem) -> tuple[list[float], list[float]]:
    """Cheapest-cost chains before (head) and after (tail) each task, transfers free."""
    head, tail = [0.0] * prob.n, [0.0] * prob.n
    cheap = [min(row) for row in prob.cost]
    for i in range(prob.n):  # problems are topologically ordered
        head[i] = max((head[u] + cheap[u] for u, _ in prob.preds[i]), default=0.0)
    for i in range(prob.n - 1, -1, -1):
        tail[i] = max((tail[j] + cheap[j] for j, _ in prob.succs[i]), default=0.0)
    return head, tail


class _Lp:
    """Sparse rows ``A_ub x <= b_ub`` and ``A_eq x = b_eq`` built column by column."""

    def __init__(self) -> None:
        self.ncols = 0
        self.ub: list[tuple[dict[int, float], float]] = []
        self.eq: list[tuple[dict[int, float], float]] = []

    def col(self) -> int:
        self.ncols += 1
        return self.ncols - 1

    def solve(self, objective_col: int) -> float | None:
        from scipy.optimize import linprog
        from scipy.sparse import csr_matrix

        def matrix(rows: list[tuple[dict[int, float], float]]):
            if not rows:
                return None, None
            data, ri, ci = [], [], []
            for r, (coef, _) in enumerate(rows):
                for c, v in coef.items():
                    ri.append(r)
                    ci.append(c)
                    data.append(v)
            return csr_matrix((data, (ri, ci)), shape=(len(rows), self.ncols)), np.array([b for _, b in rows])

        c = np.zeros(self.ncols)
        c[objective_col] = 1.0
        a_ub, b_ub = matrix(self.ub)
        a_eq, b_eq = matrix(self.eq)
        res = linprog(c, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
        return float(res.fun) if res.status == 0 else None


def precedence_lp(prob: Problem) -> float:
    """The LP bound on the makespan (see the module docstring); 0 when it cannot be solved."""
    if prob.n == 0:
        return 0.0
    units = units_of(prob, pool=True)
    p, nu = prob.p, len(units)
    lp = _Lp()
    big = prob.n * (nu + 1) + len(prob.edges) * nu * nu > MAX_COLUMNS
    span = lp.col()
    x = [{a: lp.col() for a, u in enumerate(units) if prob.cost[i][u[0]] < math.inf} for i in range(prob.n)]
    s = [lp.col() for _ in range(prob.n)]

    def dur(i: int) -> dict[int, float]:
        return {col: prob.cost[i][units[a][0]] for a, col in x[i].items()}

    for i in range(prob.n):
        lp.eq.append((dict.fromkeys(x[i].values(), 1.0), 1.0))
        lp.ub.append(({s[i]: 1.0, **dur(i), span: -1.0}, 0.0))
    for e, (u, v) in enumerate(prob.edges):
        row = {s[u]: 1.0, s[v]: -1.0, **dur(u)}
        priced = [(a, b) for a in x[u] for b in x[v]
                  if a != b and prob.comm[e][units[a][0] * p + units[b][0]] > 0]
        if priced and not big:
            z = {(a, b): lp.col() for a in x[u] for b in x[v]}
            for a, col in x[u].items():
                lp.eq.append(({**{z[a, b]: 1.0 for b in x[v]}, col: -1.0}, 0.0))
            for b, col in x[v].items():
                lp.eq.append(({**{z[a, b]: 1.0 for a in x[u]}, col: -1.0}, 0.0))
            for a, b in priced:
                row[z[a, b]] = prob.comm[e][units[a][0] * p + units[b][0]]
        lp.ub.append((row, 0.0))
    for a, unit in enumerate(units):
        lp.ub.append(({**{x[i][a]: prob.cost[i][unit[0]] for i in range(prob.n) if a in x[i]},
                       span: -float(len(unit))}, 0.0))
    _energetic(prob, units, x, span, lp)
    value = lp.solve(span)
    return 0.0 if value is None else value * (1 - 1e-9)  # the LP's tolerance: never above the optimum


def _energetic(prob: Problem, units: list[list[int]], x: list[dict[int, int]], span: int, lp: _Lp) -> None:
    """``C >= t + load(tasks with head >= t) / k + least tail among them``, and mirrored."""
    head, tail = _heads_tails(prob)
    per_unit = max(1, MAX_CUTS // (2 * len(units)))
    for first, second in ((head, tail), (tail, head)):
        order = sorted(range(prob.n), key=lambda i: -first[i])
        cuts = sorted({first[i] for i in order if first[i] > 0}, reverse=True)
        if len(cuts) > per_unit:
            cuts = cuts[:: math.ceil(len(cuts) / per_unit)]
        for a, unit in enumerate(units):
            k = float(len(unit))
            for t in cuts:
                members = [i for i in order if first[i] >= t and a in x[i]]
                if not members:
                    continue
                rest = min(second[i] for i in members)
                coef = {x[i][a]: prob.cost[i][unit[0]] / k for i in members}
                lp.ub.append(({**coef, span: -1.0}, -(t + rest)))
