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

A unit's CPU price varies from model to model (one 100-task STG graph spent 31.6 CPU s on
2.9 units), so a CPU-second safety sits on top: the full model and the neighbourhood search
together stop at ``cpu_cap(n) = min(60, max(20, n / 5))`` CPU seconds of this process (20 up
to 100 tasks, 40 at 200, 60 from 300: twice the rule's aim of about 10 s at 100 tasks, because
on a loaded host the same units cost up to twice the CPU seconds and a tighter safety cut
Montage-58's search short: 2613.5 instead of 2593.6 with a 10-s safety), measured with ``time.process_time`` while the
solver runs one worker (``cpuguard``), never wall time, so a loaded host does not cut the
search short. The deterministic limit normally binds first and the schedule is the same on
every run; where the safety binds, a warning says so (the result may then vary with the
machine). An explicit ``opt_time`` scales the safety with it (``cpu_cap x opt_time /
cap(n)``), so long runs stay long.
"""

from __future__ import annotations

__all__ = ["FULL_STAKE", "cap", "cpu_cap", "first", "lns_share", "stake"]

FULL_STAKE = 0.01  # a gap this large (relative to the makespan) earns the whole remaining budget


def cap(n: int) -> float:
    """The default total deterministic budget for ``n`` tasks."""
    return min(4.0, 0.4 + n / 40)


def cpu_cap(n: int, total: float | None = None) -> float:
    """The CPU-second safety on the solver (full model and neighbourhood search together) for
    ``n`` tasks; ``total``, an explicit deterministic budget, scales it (None: the default)."""
    base = min(60.0, max(20.0, n / 5))
    return base if total is None else base * max(1.0, total / cap(n))


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
