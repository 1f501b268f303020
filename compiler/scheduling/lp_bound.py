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
  chain before them) nor end later than C - u (their tail after them) load class a by
  ``L``: ``C >= t + L / k_a + u``, for a grid of (t, u) over the heads and tails.

Every real schedule is a feasible point (x integral), so the optimum is a lower bound: at
least the critical path (one task can no longer be everywhere at its cheapest while all its
work also lands on the cheapest class) and at least the load LP of ``bounds``. Big models
(more than ``MAX_COLUMNS`` transport columns) drop the transfers. The cuts are added by
separation: solve, add the most violated ones, solve again (``CUT_ROUNDS`` times at most).
"""

from __future__ import annotations

import math

import numpy as np
from planc.compiler.scheduling.problem import Problem
from planc.compiler.scheduling.units import units_of

__all__ = ["MAX_COLUMNS", "precedence_lp"]

MAX_COLUMNS = 60_000  # LP columns (placements, starts, transport) above which transfers are dropped
GRID_CELLS = 40_000  # (head, tail) thresholds searched for violated energetic cuts (fewer above 200 tasks)
NEGLIGIBLE = 1e-3  # transfers below this share of work / devices are left out (still a bound)
CUT_ROUNDS = 6  # LP re-solves with the most violated cuts added
CUTS_PER_ROUND = 40  # per device class


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

    def solve(self, objective_col: int) -> tuple[float, np.ndarray] | None:
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
        return (float(res.fun), res.x) if res.status == 0 else None


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
    scale = sum(min(row) for row in prob.cost) / p  # below any makespan
    for e, (u, v) in enumerate(prob.edges):
        row = {s[u]: 1.0, s[v]: -1.0, **dur(u)}
        priced = [(a, b) for a in x[u] for b in x[v]
                  if a != b and prob.comm[e][units[a][0] * p + units[b][0]] > NEGLIGIBLE * scale]
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
    found = lp.solve(span)
    energetic = _Energetic(prob, units)
    for _ in range(CUT_ROUNDS):
        if found is None:
            break
        cuts = energetic.violated(x, found[1], found[0])
        if not cuts:
            break
        for members, floor, a in cuts:
            unit = units[a]
            lp.ub.append(({**{x[i][a]: prob.cost[i][unit[0]] / len(unit) for i in members}, span: -1.0}, -floor))
        found = lp.solve(span)
    return 0.0 if found is None else found[0] * (1 - 1e-9)  # the LP's tolerance: never above the optimum


def _levels(values: np.ndarray, most: int) -> np.ndarray:
    """Up to ``most`` thresholds among the distinct ``values`` (always the smallest and largest)."""
    distinct = np.unique(values)
    if len(distinct) > most:
        distinct = np.unique(distinct[np.round(np.linspace(0, len(distinct) - 1, most)).astype(int)])
    return distinct


class _Energetic:
    """Separation of the energetic cuts: for every (t, u) on a grid of heads and tails, the
    tasks S with head >= t and tail >= u run inside [min head, C - min tail], so on class a
    ``C >= min head(S) + min tail(S) + sum_{i in S} cost[i, a] x[i, a] / k_a``."""

    def __init__(self, prob: Problem, units: list[list[int]]) -> None:
        head, tail = (np.array(v) for v in _heads_tails(prob))
        self.head, self.tail = head, tail
        side = max(2, int(GRID_CELLS ** 0.5 / max(1.0, prob.n / 200)))
        t_lv, u_lv = _levels(head, side), _levels(tail, side)
        mask = (head[None, None, :] >= t_lv[:, None, None]) & (tail[None, None, :] >= u_lv[None, :, None])
        self.mask = mask.reshape(-1, prob.n)  # one row per (t, u)
        self.mask = self.mask[self.mask.any(axis=1)]
        big = np.inf
        self.floor = (np.where(self.mask, head, big).min(axis=1) + np.where(self.mask, tail, big).min(axis=1))
        self.cost = np.array([[prob.cost[i][u[0]] / len(u) if prob.cost[i][u[0]] < math.inf else 0.0
                               for u in units] for i in range(prob.n)])

    def violated(self, x: list[dict[int, int]], sol: np.ndarray, span: float):
        """The most violated cuts per class: (members, floor, class)."""
        out = []
        for a in range(self.cost.shape[1]):
            frac = np.array([sol[x[i][a]] if a in x[i] else 0.0 for i in range(len(x))])
            need = self.floor + self.mask @ (self.cost[:, a] * frac)
            over = np.nonzero(need > span * (1 + 1e-7) + 1e-9)[0]
            for r in over[np.argsort(-need[over])][:CUTS_PER_ROUND]:
                members = [i for i in np.nonzero(self.mask[r])[0].tolist() if a in x[i]]
                out.append((members, float(self.floor[r]), a))
        return out
