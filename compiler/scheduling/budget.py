"""The solver's budget rule: deterministic time by graph size and by what is still at stake.

All times are CP-SAT deterministic seconds ("units"), never wall time, so a plan compiles to
the same schedule on any machine under any load. One unit measured 2-6 CPU seconds on
STG and workflow models of 40-100 tasks on this project's (shared, loaded) build host.

The rule, for a graph of n tasks and a total budget T (default ``cap(n)``):

1. Nothing when the heuristic schedule already meets a lower bound (proven optimal).
2. The full model for ``first(n, T) = min(T, max(0.1 + n / 250 capped at 1, T / 10))``
   units; with the default T that is ``0.1 + n / 250`` (0.5 at 100 tasks, 0.9 at 200).
3. If the full model did not prove its schedule optimal, large-neighbourhood search gets
   ``(T - first) x min(1, stake / 1 %)`` units, where the stake is
   ``(makespan - best lower bound) / makespan`` after step 2: a schedule within 0.1 % of its
   bound gets a tenth of the rest, one 1 % or more away all of it. It stops early when it
   reaches the bound.

``cap(n) = min(4, 0.4 + n / 40)``: 1.65 units at 50 tasks, 2.9 at 100, 4 from 144 tasks;
about 10-12 CPU seconds for a 100-task plan whose gap stays open on the build host (much
less where the full model proves its schedule: most STG graphs take 0.4-2 CPU s). Measured
on WfCommons workflows, neighbourhood search kept improving roughly in proportion to its
budget (1000Genome-52: 443.4 after the full model, 438.1 / 432.9 / 429.5 after 0.5 / 1 / 2
units), so the cap is where the compile-time price stops, not where the gain does.
"""

from __future__ import annotations

__all__ = ["FULL_STAKE", "cap", "first", "lns_share", "stake"]

FULL_STAKE = 0.01  # a gap this large (relative to the makespan) earns the whole remaining budget


def cap(n: int) -> float:
    """The default total deterministic budget for ``n`` tasks."""
    return min(4.0, 0.4 + n / 40)


def first(n: int, total: float) -> float:
    """The full model's share of ``total``."""
    return min(total, max(min(1.0, 0.1 + n / 250), total / 10))


def stake(makespan: float, lower: float) -> float:
    """What is still at stake: the distance to the best lower bound relative to the makespan."""
    if makespan <= 0:
        return 0.0
    return max(0.0, (makespan - lower) / makespan)


def lns_share(rest: float, at_stake: float) -> float:
    """Large-neighbourhood search's budget from ``rest`` units left and the stake."""
    return max(0.0, rest) * min(1.0, at_stake / FULL_STAKE)
