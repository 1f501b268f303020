"""Large-neighbourhood search on the CP-SAT model: keep most of the incumbent, re-solve a window.

Where the full model stalls (its search no longer improves the schedule within its time),
a smaller model often does: every task outside a window keeps its device and its order on
that device (a chain of precedences), the tasks inside the window are free (device and
start). Each round re-solves one window under a small deterministic time limit; a schedule
no worse than the incumbent is taken (equal makespans move the search along a plateau), a
strictly shorter one counts as an improvement. Windows are runs of consecutive tasks in the
incumbent's start order, centred on a task of its critical chain, drawn from a seeded
generator; a window whose neighbourhood was searched to the end without gain grows, one cut
short by its time limit shrinks. Latency only: energy and period keep the full model's result.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

from ortools.sat.python import cp_model
from planc.compiler.scheduling.cpsat import _Model, _timing  # the model and its re-timing are shared
from planc.compiler.scheduling.listsched import Timing
from planc.compiler.scheduling.problem import Problem
from planc.compiler.scheduling.schedule import Objective

__all__ = ["LnsResult", "lns"]

MIN_WINDOW = 8  # tasks; smaller neighbourhoods rarely hold an improvement
ROUND_FLOOR = 0.01  # deterministic seconds charged at least per round (building the model is not free)


@dataclass(frozen=True, slots=True)
class LnsResult:
    """The best timing found (None: nothing strictly better than the incumbent), rounds run,
    rounds that shortened the schedule, and the deterministic time spent."""

    timing: Timing | None
    rounds: int
    improvements: int
    spent: float


def _critical(prob: Problem, t: Timing) -> list[int]:
    """Tasks of the incumbent's critical chain: from the last to finish, back through whatever
    delayed each (the predecessor whose data arrived last, or the task before it on its device)."""
    p = prob.p
    on_dev: dict[int, list[int]] = {}
    for i in sorted(range(prob.n), key=lambda i: (t.start[i], i)):
        on_dev.setdefault(t.dev[i], []).append(i)
    before = {b: a for seq in on_dev.values() for a, b in itertools.pairwise(seq)}
    i = max(range(prob.n), key=lambda i: (t.finish[i], -i))
    chain = [i]
    while t.start[i] > 1e-12 * max(t.makespan, 1.0):
        cands = [(t.finish[u] + prob.comm[e][t.dev[u] * p + t.dev[i]], u) for u, e in prob.preds[i]]
        if i in before:
            cands.append((t.finish[before[i]], before[i]))
        if not cands:
            break
        i = max(cands)[1]
        chain.append(i)
    return chain


def _window(prob: Problem, t: Timing, rng: random.Random, size: int) -> set[int]:
    order = sorted(range(prob.n), key=lambda i: (t.start[i], i))
    rank = {i: r for r, i in enumerate(order)}
    centre = rank[rng.choice(_critical(prob, t))]
    lo = max(0, min(centre - size // 2, prob.n - size))
    return set(order[lo:lo + size])


def _restrict(model: _Model, t: Timing, free: set[int]) -> None:
    """Tasks outside ``free`` keep their unit and their order on their device."""
    m = model.m
    chains: dict[int, list[int]] = {}
    for i in sorted(range(model.prob.n), key=lambda i: (t.start[i], i)):
        if i in free:
            continue
        m.add(model.x[i][model.unit_of[t.dev[i]]] == 1)
        chains.setdefault(t.dev[i], []).append(i)
    for seq in chains.values():
        for a, b in itertools.pairwise(seq):
            m.add(model.start[b] >= model.end[a])


def _round(prob: Problem, incumbent: Timing, free: set[int], time: float,
           seed: int) -> tuple[Timing | None, bool, float]:
    """One neighbourhood: its best timing (None: none), whether it was searched to the end, and
    the deterministic time it took."""
    model = _Model(prob, Objective.LATENCY, incumbent)
    _restrict(model, incumbent, free)
    solver = cp_model.CpSolver()
    params = solver.parameters
    params.num_workers = 1
    params.random_seed = seed
    params.max_deterministic_time = time
    params.use_overload_checker_in_cumulative = True
    params.use_timetable_edge_finding_in_cumulative = True
    status = solver.solve(model.m)
    spent = solver.deterministic_time
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None, status == cp_model.INFEASIBLE, spent
    return _timing(model, solver), status == cp_model.OPTIMAL, spent


def lns(prob: Problem, incumbent: Timing, *, budget: float, seed: int = 0, lower: float = 0.0) -> LnsResult:
    """Improve ``incumbent``'s makespan by re-solving windows within ``budget`` deterministic
    seconds; stops early when the makespan reaches ``lower`` (a proven lower bound)."""
    rng = random.Random(seed)
    size = max(MIN_WINDOW, min(prob.n, 24 + prob.n // 8))
    best, improved, rounds, spent = incumbent, 0, 0, 0.0
    start_span = incumbent.makespan
    per_round = max(0.02, min(0.25, budget / 12))
    while spent + 1e-9 < budget and prob.n > 1 and best.makespan > lower * (1 + 1e-9):
        time = min(per_round, budget - spent)
        found, complete, took = _round(prob, best, _window(prob, best, rng, size), time, seed + rounds)
        rounds += 1
        spent += max(took, ROUND_FLOOR)  # the solver's deterministic clock, and the model building
        if found is not None and found.makespan < best.makespan * (1 - 1e-12):
            best, improved = found, improved + 1
        elif found is not None and found.makespan <= best.makespan * (1 + 1e-12):
            best = found
        if complete and size < prob.n:
            size = min(prob.n, size + max(4, size // 4))
        elif not complete:
            size = max(MIN_WINDOW, size - max(2, size // 8))
    kept = best if best.makespan < start_span * (1 - 1e-12) else None
    return LnsResult(kept, rounds, improved, spent)
