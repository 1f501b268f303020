"""Large-neighbourhood search on the CP-SAT model: keep most of the incumbent, re-solve a window.

Where the full model stalls (its search no longer improves the schedule within its time),
a smaller model often does: every task outside a window keeps its device and its order on
that device (a chain of precedences), the tasks inside the window are free (device and
start). Each round re-solves one window under a small deterministic time limit; a schedule
no worse than the incumbent is taken (equal makespans move the search along a plateau), a
strictly shorter one counts as an improvement. Windows are runs of consecutive tasks in the
incumbent's start order centred on a task of its critical chain (``run``), the tasks of
two devices around that task's start (``pair``: the critical task's device and another, so
work can trade places between them), or a segment of the critical chain with its
predecessors and successors (``chain``). The kind of each round is drawn from a seeded
generator in proportion to each kind's recent success (a shorter schedule scores 1, a move
along a plateau 0.3, nothing 0, decayed), so the budget flows to the kind that pays on this
graph; every kind keeps a floor so none starves. Each kind has its own window size: searched
to the end without gain it grows, cut short by its time limit it shrinks. A CPU-second
safety (``cpu_limit``) ends the search between rounds and caps each round's wall time
(see ``budget``). Latency only: energy and period keep the full model's result.
"""

from __future__ import annotations

import itertools
import logging
import random
import time as _time
from dataclasses import dataclass

from ortools.sat.python import cp_model
from planc.compiler.scheduling.cpsat import _Model, _timing  # the model and its re-timing are shared
from planc.compiler.scheduling.cpuguard import Guard
from planc.compiler.scheduling.listsched import Timing
from planc.compiler.scheduling.problem import Problem
from planc.compiler.scheduling.schedule import Objective

__all__ = ["LnsResult", "lns"]

log = logging.getLogger(__name__)

MIN_WINDOW = 8  # tasks; smaller neighbourhoods rarely hold an improvement
ROUNDS = 24  # rounds the budget is cut into (each at most ROUND_MAX units); more, shorter
# rounds give the kinds' scores something to learn from (12 before the kinds: see RESULTS.md)
ROUND_MAX = 0.25
ROUND_FLOOR = 0.01  # deterministic seconds charged at least per round (building the model is not free)
KINDS = ("run", "pair", "chain")
REWARD_BETTER, REWARD_PLATEAU, DECAY, FLOOR = 1.0, 0.3, 0.8, 0.1


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


def _run_window(prob: Problem, t: Timing, centre_task: int, size: int) -> set[int]:
    order = sorted(range(prob.n), key=lambda i: (t.start[i], i))
    centre = order.index(centre_task)
    lo = max(0, min(centre - size // 2, prob.n - size))
    return set(order[lo:lo + size])


def _pair_window(prob: Problem, t: Timing, centre_task: int, size: int, rng: random.Random) -> set[int]:
    """The tasks of the critical task's device and of one other, nearest in start time to it."""
    used = sorted({t.dev[i] for i in range(prob.n)} | {d for d in range(prob.p)
                                                       if prob.cost[centre_task][d] < float("inf")})
    others = [d for d in used if d != t.dev[centre_task]]
    if not others:
        return _run_window(prob, t, centre_task, size)
    devs = {t.dev[centre_task], rng.choice(others)}
    near = sorted((i for i in range(prob.n) if t.dev[i] in devs),
                  key=lambda i: (abs(t.start[i] - t.start[centre_task]), i))
    return set(near[:size])


def _chain_window(prob: Problem, chain: list[int], size: int, rng: random.Random) -> set[int]:
    """A segment of the critical chain and the tasks next to it in the graph."""
    seg = max(1, size // 3)
    lo = rng.randrange(max(1, len(chain) - seg + 1))
    free = set(chain[lo:lo + seg])
    ring = sorted(free)
    while len(free) < size and ring:
        nxt = []
        for i in ring:
            for u, _ in prob.preds[i]:
                if u not in free and len(free) < size:
                    free.add(u)
                    nxt.append(u)
            for v, _ in prob.succs[i]:
                if v not in free and len(free) < size:
                    free.add(v)
                    nxt.append(v)
        ring = nxt
    return free


def _window(prob: Problem, t: Timing, rng: random.Random, size: int, kind: str = "run") -> set[int]:
    chain = _critical(prob, t)
    centre = rng.choice(chain)
    if kind == "pair":
        return _pair_window(prob, t, centre, size, rng)
    if kind == "chain":
        return _chain_window(prob, chain, size, rng)
    return _run_window(prob, t, centre, size)


def _pick(scores: dict[str, float], rng: random.Random) -> str:
    kinds = list(scores)
    return rng.choices(kinds, weights=[scores[k] + FLOOR for k in kinds])[0]


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
           seed: int, cpu: float | None = None) -> tuple[Timing | None, bool, float]:
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
    with Guard(solver, cpu):  # when it fires, the next round sees no CPU left and stops
        status = solver.solve(model.m)
    spent = solver.deterministic_time
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None, status == cp_model.INFEASIBLE, spent
    return _timing(model, solver), status == cp_model.OPTIMAL, spent


def lns(prob: Problem, incumbent: Timing, *, budget: float, seed: int = 0, lower: float = 0.0,
        cpu_limit: float | None = None, kinds: tuple[str, ...] = KINDS, rounds: int = ROUNDS) -> LnsResult:
    """Improve ``incumbent``'s makespan by re-solving windows within ``budget`` deterministic
    seconds; stops early when the makespan reaches ``lower`` (a proven lower bound), or when
    this process has spent ``cpu_limit`` CPU seconds in it (a safety; None: no limit).
    ``kinds``: the window kinds to use; ``rounds``: how many rounds the budget is cut into
    (``kinds=("run",), rounds=12`` is the search before kinds adapted)."""
    rng = random.Random(seed)
    c0 = _time.process_time()
    base = max(MIN_WINDOW, min(prob.n, 24 + prob.n // 8))
    size = dict.fromkeys(kinds, base)
    scores = dict.fromkeys(kinds, 1.0)
    per_round = max(0.02, min(ROUND_MAX, budget / rounds))
    best, improved, rounds, spent = incumbent, 0, 0, 0.0
    start_span = incumbent.makespan
    while spent + 1e-9 < budget and prob.n > 1 and best.makespan > lower * (1 + 1e-9):
        left_cpu = None if cpu_limit is None else cpu_limit - (_time.process_time() - c0)
        if left_cpu is not None and left_cpu <= 0:
            log.warning("schedule: neighbourhood search stopped at its CPU safety after %.2f of %.2f "
                        "deterministic units; the schedule may differ from run to run", spent, budget)
            break
        time = min(per_round, budget - spent)
        kind = _pick(scores, rng) if len(kinds) > 1 else kinds[0]
        found, complete, took = _round(prob, best, _window(prob, best, rng, size[kind], kind), time,
                                       seed + rounds, left_cpu)
        rounds += 1
        spent += max(took, ROUND_FLOOR)  # the solver's deterministic clock, and the model building
        reward = 0.0
        if found is not None and found.makespan < best.makespan * (1 - 1e-12):
            best, improved, reward = found, improved + 1, REWARD_BETTER
        elif found is not None and found.makespan <= best.makespan * (1 + 1e-12):
            reward = REWARD_PLATEAU if found != best else 0.0
            best = found
        scores[kind] = DECAY * scores[kind] + (1 - DECAY) * reward
        if complete and size[kind] < prob.n:
            size[kind] = min(prob.n, size[kind] + max(4, size[kind] // 4))
        elif not complete:
            size[kind] = max(MIN_WINDOW, size[kind] - max(2, size[kind] // 8))
    kept = best if best.makespan < start_span * (1 - 1e-12) else None
    return LnsResult(kept, rounds, improved, spent)
