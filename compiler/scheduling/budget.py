"""The solver's budget rule: deterministic time by graph size and by what is still at stake.

All times are CP-SAT deterministic seconds ("units"), never wall time, so a plan compiles to
the same schedule on any machine under any load. One unit measured 3-6 CPU seconds on
STG-style and workflow models of 50-200 tasks on this project's (shared, loaded) build host.

The rule, for a graph of n tasks and a total budget T (default ``cap(n)``):

1. Nothing when the heuristic schedule already meets a lower bound (proven optimal).
2. The full model for ``first(n, T) = min(T, max(0.1 + n / 250 capped at 1, T / 3))``
   units; with the default T that is ``0.1 + n / 250`` (0.5 at 100 tasks, 0.9 at 200).
3. If the full model did not prove its schedule optimal, large-neighbourhood search gets
   ``(T - first) x min(1, stake / 2 %)`` units, where the stake is
   ``(makespan - best lower bound) / makespan`` after step 2: a schedule within 0.2 % of its
   bound gets a tenth of the rest, one 2 % or more away all of it. It stops early when it
   reaches the bound.

``cap(n) = min(3, 0.3 + n / 100)``: 0.8 units at 50 tasks, 1.3 at 100, 2.3 at 200, 3 from
270 tasks; about 4-8 CPU seconds for a 100-task plan on the build host.
"""

from __future__ import annotations

__all__ = ["FULL_STAKE", "cap", "first", "lns_share", "stake"]

FULL_STAKE = 0.02  # a gap this large (relative to the makespan) earns the whole remaining budget


def cap(n: int) -> float:
    """The default total deterministic budget for ``n`` tasks."""
    return min(3.0, 0.3 + n / 100)


def first(n: int, total: float) -> float:
    """The full model's share of ``total``."""
    return min(total, max(min(1.0, 0.1 + n / 250), total / 3))


def stake(makespan: float, lower: float) -> float:
    """What is still at stake: the distance to the best lower bound relative to the makespan."""
    if makespan <= 0:
        return 0.0
    return max(0.0, (makespan - lower) / makespan)


def lns_share(rest: float, at_stake: float) -> float:
    """Large-neighbourhood search's budget from ``rest`` units left and the stake."""
    return max(0.0, rest) * min(1.0, at_stake / FULL_STAKE)
