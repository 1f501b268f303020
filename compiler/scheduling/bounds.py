"""Lower bounds on the best schedule's objective: critical path, work over devices, a solver's bound."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from planc.compiler.scheduling.exact import comm_oct
from planc.compiler.scheduling.lp_bound import precedence_lp
from planc.compiler.scheduling.objective import Objective
from planc.compiler.scheduling.problem import Problem

__all__ = ["Bounds", "load_bound", "lower_bounds"]

LP_MAX_COLUMNS = 20_000  # (task, device) pairs up to which the load bound is an LP
CHEAP = 200_000  # edges x devices^2 up to which the critical path prices transfers exactly
LP_MAX_TASKS = 1_000  # tasks up to which the precedence LP bound is computed (0.03-1.5 s at 40-200 tasks)


@dataclass(frozen=True, slots=True)
class Bounds:
    """Lower bounds on the objective's value (seconds; joules for energy); 0 where unknown.

    Attributes:
        critical_path: the longest chain, each task on its cheapest device, each transfer at
            its cheapest real price given both ends' devices (devices never shared).
        work: the least makespan that holds all work if tasks could be split across devices
            (an LP; on identical devices total work over devices); for throughput also the
            biggest single task; for energy the cheapest busy energy.
        lp: the precedence LP over device classes with transfers and energetic cuts
            (``lp_bound``; 0: not computed, above ``LP_MAX_TASKS`` tasks or another objective).
        solver: the constraint solver's proven bound (0: no solver ran).
        proven: the schedule is proven optimal (by the solver or the branch and bound).
        solver_status: CP-SAT's final status ("" when it did not run).
    """

    critical_path: float = 0.0
    work: float = 0.0
    solver: float = 0.0
    lp: float = 0.0
    proven: bool = False
    solver_status: str = ""

    @property
    def best(self) -> float:
        """The tightest of the bounds."""
        return max(self.critical_path, self.work, self.solver, self.lp)

    def gap(self, value: float) -> float:
        """Relative distance of ``value`` above the best bound (0: optimal; inf: no bound)."""
        if self.proven:
            return 0.0
        lb = self.best
        if lb <= 0:
            return 0.0 if value <= 0 else math.inf
        return max(value / lb - 1.0, 0.0)


def load_bound(prob: Problem) -> float:
    """The least makespan that fits the work if tasks could be split across devices: the LP
    ``min C`` s.t. each task's fractions sum to 1 and each device's share of costs is <= C.
    Much tighter than total work / devices when speeds differ by device."""
    from scipy.optimize import linprog  # only when bounds are asked for

    n, p = prob.n, prob.p
    cols = [(i, d) for i in range(n) for d in range(p) if prob.cost[i][d] < math.inf]
    if p == 1 or len(cols) > LP_MAX_COLUMNS:
        return sum(min(row) for row in prob.cost) / p
    k = len(cols)
    # Variables: one fraction per (task, device) column, then C.
    c = np.zeros(k + 1)
    c[k] = 1.0
    a_eq = np.zeros((n, k + 1))
    a_ub = np.zeros((p, k + 1))
    for j, (i, d) in enumerate(cols):
        a_eq[i, j] = 1.0
        a_ub[d, j] = prob.cost[i][d]
    a_ub[:, k] = -1.0
    res = linprog(c, A_ub=a_ub, b_ub=np.zeros(p), A_eq=a_eq, b_eq=np.ones(n), bounds=(0, None), method="highs")
    if res.status != 0:
        return sum(min(row) for row in prob.cost) / p
    return float(res.fun) * (1 - 1e-9)  # the solver's tolerance, so it never exceeds the optimum


def _makespan_bounds(prob: Problem) -> tuple[float, float]:
    if len(prob.edges) * prob.p * prob.p <= CHEAP:
        oct_table = comm_oct(prob)
        cp = max((min(c + o for c, o in zip(prob.cost[i], oct_table[i], strict=True)) for i in range(prob.n)
                  if not prob.preds[i]), default=0.0)
    else:  # big graphs: the chain of cheapest costs, transfers free
        tail = [0.0] * prob.n
        for i in range(prob.n - 1, -1, -1):
            tail[i] = min(prob.cost[i]) + max((tail[j] for j, _ in prob.succs[i]), default=0.0)
        cp = max(tail, default=0.0)
    return cp, load_bound(prob)


def lower_bounds(prob: Problem, objective: Objective) -> Bounds:
    """The problem-only bounds (no solver) for ``objective``."""
    if prob.n == 0:
        return Bounds()
    cp, work = _makespan_bounds(prob)
    lp = precedence_lp(prob) if prob.n <= LP_MAX_TASKS and objective is not Objective.THROUGHPUT else 0.0
    if objective is Objective.LATENCY:
        return Bounds(critical_path=cp, work=work, lp=lp)
    if objective is Objective.THROUGHPUT:
        # A period is a device's busy time per run: at least the biggest task, at least the mean load.
        return Bounds(critical_path=0.0, work=max(work, max(min(row) for row in prob.cost)))
    span = max(cp, work, lp)
    dyn = sum(min((prob.watts[d] - prob.idle_watts[d]) * c for d, c in enumerate(row) if c < math.inf)
              for row in prob.cost)
    idle = sum(prob.idle_watts)
    return Bounds(critical_path=0.0, work=prob.pue * (dyn + idle * span))
