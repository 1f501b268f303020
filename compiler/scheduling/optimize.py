"""Our scheduler: a portfolio of list schedules improved by iterated local search."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

from planc.compiler.scheduling.exact import comm_oct, exact
from planc.compiler.scheduling.listsched import ScheduleInfeasible, Timing, eft_decode, fixed_decode
from planc.compiler.scheduling.peft import rank_oct
from planc.compiler.scheduling.problem import Problem
from planc.compiler.scheduling.ranks import downward_rank, optimistic_cost_table, order_by, upward_rank
from planc.compiler.scheduling.schedule import Objective, better, period_of, score_of

__all__ = ["SearchOptions", "assignment_order", "bottleneck_tasks", "critical_tasks", "optimize"]

INF = math.inf
BIG = 2000  # above this many tasks the portfolio keeps only its cheapest members
Score = tuple[float, float]
WORST: Score = (INF, INF)


@dataclass(frozen=True, slots=True)
class SearchOptions:
    """Knobs of ``optimize``; the defaults scale the effort down for big graphs.

    Attributes:
        seed: seeds the random perturbations; the same seed gives the same schedule.
        budget_s: wall-clock cap on the search (None: only the evaluation budget applies).
        max_evals: schedule evaluations of the local search (None: ``4e8 / n**2`` clipped
            to [8, 4000]: 4000 up to 316 tasks, 400 at 1000, 8 at 10 000; one evaluation
            costs about ``n`` list-scheduling steps; a quarter of that when memory
            capacities can bind).
        polish_tasks: graphs of at most this many tasks get a branch-and-bound polish.
        polish_nodes: node limit of that polish.
    """

    seed: int = 0
    budget_s: float | None = None
    max_evals: int | None = None
    polish_tasks: int = 12
    polish_nodes: int = 100_000

    def evals_for(self, n: int) -> int:
        if self.max_evals is not None:
            return self.max_evals
        return int(min(4000, max(8, 400_000_000 // max(n, 1) ** 2)))


def assignment_order(prob: Problem, dev: Sequence[int]) -> list[int]:
    """Order for a fixed placement: ready tasks by decreasing bottom level with the real costs."""
    p, cost, comm = prob.p, prob.cost, prob.comm
    bl = [0.0] * prob.n
    for i in range(prob.n - 1, -1, -1):
        d = dev[i]
        best = 0.0
        for j, e in prob.succs[i]:
            x = comm[e][d * p + dev[j]] + bl[j]
            best = max(best, x)
        bl[i] = cost[i][d] + best
    return order_by(prob, bl)


def start_order(timing: Timing) -> list[int]:
    """Tasks by start time (ties by index): a topological order that reproduces ``timing``."""
    return sorted(range(len(timing.start)), key=lambda i: (timing.start[i], i))


def critical_tasks(prob: Problem, timing: Timing) -> list[int]:
    """Tasks on a tight chain (data or device) ending at the last finishing task."""
    dev, start, finish = timing
    tol = 1e-9 * max(timing.makespan, 1.0)
    by_dev: dict[tuple[int, float], int] = {}
    for i in range(prob.n):
        by_dev[(dev[i], finish[i])] = i
    p, comm = prob.p, prob.comm
    stack = [max(range(prob.n), key=lambda i: finish[i])]
    seen = set(stack)
    while stack:
        i = stack.pop()
        nxt = [u for u, e in prob.preds[i] if abs(finish[u] + comm[e][dev[u] * p + dev[i]] - start[i]) <= tol]
        prev = by_dev.get((dev[i], start[i]))
        if prev is not None and prev != i:
            nxt.append(prev)
        for u in nxt:
            if u not in seen:
                seen.add(u)
                stack.append(u)
    return sorted(seen)


def bottleneck_tasks(prob: Problem, dev: Sequence[int]) -> list[int]:
    """Tasks on the busiest device, or at either end of the busiest link (the period)."""
    p = prob.p
    load = [0.0] * (p + p * p)
    for i, d in enumerate(dev):
        load[d] += prob.cost[i][d]
    for e, (u, v) in enumerate(prob.edges):
        if dev[u] != dev[v]:
            load[p + dev[u] * p + dev[v]] += prob.comm[e][dev[u] * p + dev[v]]
    k = max(range(len(load)), key=load.__getitem__)
    if k < p:
        return [i for i, d in enumerate(dev) if d == k]
    a, b = divmod(k - p, p)
    return sorted({x for u, v in prob.edges if dev[u] == a and dev[v] == b for x in (u, v)})


class _Search:
    """State of one optimization run: the best schedule so far and the evaluation budget."""

    def __init__(self, prob: Problem, objective: Objective, options: SearchOptions) -> None:
        self.prob, self.objective, self.options = prob, objective, options
        self.rng = random.Random(options.seed)
        # Under binding memory capacities an evaluation costs several times more.
        self.evals_left = options.evals_for(prob.n) // (4 if prob.memory_limited else 1)
        self.deadline = INF if options.budget_s is None else time.perf_counter() + options.budget_s
        self.best: Timing | None = None
        self.best_score: Score = WORST

    def out_of_budget(self) -> bool:
        return self.evals_left <= 0 or time.perf_counter() > self.deadline

    def offer(self, timing: Timing | None) -> Score:
        if timing is None:
            return WORST
        score = score_of(self.prob, timing, self.objective)
        if better(score, self.best_score):
            self.best, self.best_score = timing, score
        return score

    def decode(self, dev: Sequence[int], order: Sequence[int], bar: Score = WORST) -> tuple[Score, Timing | None]:
        """Evaluate a placement with an order; skip the decode if the period alone loses to ``bar``."""
        self.evals_left -= 1
        if self.objective is Objective.THROUGHPUT:
            per = period_of(self.prob, dev)
            if per > bar[0] * (1 + 1e-9):
                return (per, INF), None
        try:
            timing = fixed_decode(self.prob, order, dev)
        except ScheduleInfeasible:
            return WORST, None
        return self.offer(timing), timing


def _seed_assignments(prob: Problem, objective: Objective) -> list[list[int]]:
    """Placements that are good for the objective by construction (decoded in b-level order)."""
    p, cost = prob.p, prob.cost
    seeds = [[d] * prob.n for d in range(p) if all(cost[i][d] < INF for i in range(prob.n))]
    if objective is Objective.ENERGY:
        dyn = [[(prob.watts[d] - prob.idle_watts[d]) * cost[i][d] for d in range(p)] for i in range(prob.n)]
        seeds.append([min(range(p), key=lambda d: (dyn[i][d], cost[i][d])) for i in range(prob.n)])
    if objective is Objective.THROUGHPUT:
        load = [0.0] * p
        dev = [0] * prob.n
        for i in sorted(range(prob.n), key=lambda i: -min(cost[i])):
            d = min(range(p), key=lambda d: (load[d] + cost[i][d], cost[i][d]))
            dev[i] = d
            load[d] += cost[i][d]
        seeds.append(dev)
    return seeds


def _portfolio(search: _Search) -> None:
    """Offer every constructive schedule of the portfolio to ``search``.

    The first two are exactly HEFT and PEFT, so the result is never worse than either.
    """
    prob = search.prob
    up, oct_mean = upward_rank(prob), optimistic_cost_table(prob)
    by_up, by_oct = order_by(prob, up), order_by(prob, rank_oct(oct_mean))
    combos: list[tuple[list[int], list[list[float]] | None]] = [(by_up, None), (by_oct, oct_mean)]
    if prob.n <= BIG:
        lookahead = comm_oct(prob)
        combos += [(by_up, oct_mean), (by_oct, None), (by_up, lookahead), (by_oct, lookahead)]
        for order in (order_by(prob, [a + b for a, b in zip(up, downward_rank(prob), strict=True)]),
                      order_by(prob, upward_rank(prob, comm_scale=0.0)),
                      order_by(prob, upward_rank(prob, comm_scale=2.0))):
            combos += [(order, None), (order, oct_mean), (order, lookahead)]
    for order, table in combos:
        try:
            search.offer(eft_decode(prob, order, oct_table=table))
        except ScheduleInfeasible:
            pass
    for dev in _seed_assignments(prob, search.objective):
        search.decode(dev, assignment_order(prob, dev))


MOVE, HOIST, SWAP, GATHER = 0, 1, 2, 3
Move = tuple[int, int, int]


def _moves(search: _Search, dev: list[int], timing: Timing) -> list[Move]:
    """Candidate moves around the critical chain, shuffled: ``(MOVE, i, d)`` puts task ``i``
    on device ``d``; ``(HOIST, i, j)`` schedules ``i`` before ``j``, the task delaying it on
    its device; ``(SWAP, i, j)`` exchanges the devices of ``i`` and a task elsewhere;
    ``(GATHER, i, d)`` puts ``i`` and its neighbours on ``d`` (saving their transfers)."""
    prob, rng = search.prob, search.rng
    crit = critical_tasks(prob, timing)
    if search.objective is Objective.THROUGHPUT:
        crit = sorted(set(crit) | set(bottleneck_tasks(prob, dev)))
    elif search.objective is not Objective.LATENCY:
        crit = sorted(set(crit) | set(rng.sample(range(prob.n), min(prob.n, 8))))
    cost = prob.cost
    moves = [(MOVE, i, d) for i in crit for d in range(prob.p) if d != dev[i] and cost[i][d] < INF]
    moves += [(GATHER, i, d) for i in crit for d in range(prob.p)
              if cost[i][d] < INF and any(dev[j] != d for j in _neighbours(prob, i))]
    ends = {(timing.dev[j], timing.finish[j]): j for j in crit}
    for i in crit:
        j = ends.get((timing.dev[i], timing.start[i]))
        if j is not None and j != i:
            moves.append((HOIST, i, j))
        for j in rng.sample(range(prob.n), min(prob.n, 6)):
            if dev[j] != dev[i] and cost[i][dev[j]] < INF and cost[j][dev[i]] < INF:
                moves.append((SWAP, i, j))
    rng.shuffle(moves)
    return moves


def _neighbours(prob: Problem, i: int) -> list[int]:
    return [j for j, _ in prob.preds[i]] + [j for j, _ in prob.succs[i]]


def _hoist(prob: Problem, order: list[int], i: int, j: int) -> list[int] | None:
    """``order`` with ``i`` moved just before ``j``, or None if that breaks a dependency."""
    pos = {t: k for k, t in enumerate(order)}
    pj, pi = pos[j], pos[i]
    if pj > pi or any(pos[u] >= pj for u, _ in prob.preds[i]):
        return None
    return order[:pj] + [i] + order[pj:pi] + order[pi + 1:]


def _try(search: _Search, dev: list[int], order: list[int], move: Move,
         score: Score) -> tuple[Score, Timing | None]:
    """Evaluate one move on ``dev`` in place; ``dev`` is restored unless it improves."""
    kind, i, x = move
    if kind == HOIST:
        hoisted = _hoist(search.prob, order, i, x)
        return search.decode(dev, hoisted, score) if hoisted is not None else (WORST, None)
    prob = search.prob
    if kind == MOVE:
        undo = [(i, dev[i])]
        dev[i] = x
    elif kind == SWAP:
        undo = [(i, dev[i]), (x, dev[x])]
        dev[i], dev[x] = dev[x], dev[i]
    else:
        undo = [(j, dev[j]) for j in [i, *_neighbours(prob, i)]]
        for j, _ in undo:
            if prob.cost[j][x] < INF:
                dev[j] = x
    s2, t2 = search.decode(dev, order, score)
    if t2 is None or not better(s2, score):
        for t, d in undo:
            dev[t] = d
    return s2, t2


def _descend(search: _Search, dev: list[int], timing: Timing, score: Score) -> tuple[list[int], Timing, Score]:
    """First-improvement local search: move a critical task to another device, swap its
    device with another task's, or put it ahead of the task delaying it, or reorder by
    bottom levels, until nothing helps."""
    prob = search.prob
    improved = True
    while improved and not search.out_of_budget():
        improved = False
        order = start_order(timing)
        for move in _moves(search, dev, timing):
            if search.out_of_budget():
                break
            s2, t2 = _try(search, dev, order, move, score)
            if t2 is not None and better(s2, score):
                timing, score, improved = t2, s2, True
                break
        if not improved and not search.out_of_budget():
            s2, t2 = search.decode(dev, assignment_order(prob, dev), score)
            if t2 is not None and better(s2, score):
                timing, score, improved = t2, s2, True
    return dev, timing, score


def _perturb(search: _Search, dev: list[int], timing: Timing) -> list[int]:
    """Random new devices for 2-5 tasks, half of them critical, some with a successor."""
    prob, rng = search.prob, search.rng
    dev = list(dev)
    crit = critical_tasks(prob, timing)
    k = max(2, min(prob.n // 10, 2 + rng.randrange(4)))
    for _ in range(k):
        i = rng.choice(crit) if rng.random() < 0.5 else rng.randrange(prob.n)
        ok = [d for d in range(prob.p) if prob.cost[i][d] < INF]
        dev[i] = rng.choice(ok)
        if rng.random() < 0.5 and prob.succs[i]:  # drag a successor along: saves its transfer
            j = rng.choice(prob.succs[i])[0]
            if prob.cost[j][dev[i]] < INF:
                dev[j] = dev[i]
    return dev


def _iterated_local_search(search: _Search) -> None:
    """Descend from the best schedule, then perturb and descend until the budget is spent."""
    assert search.best is not None
    cur = search.best
    dev, timing, score = _descend(search, list(cur.dev), cur, search.best_score)
    stall = 0
    while not search.out_of_budget():
        cand = _perturb(search, dev, timing)
        s2, t2 = search.decode(cand, assignment_order(search.prob, cand))
        if t2 is None:
            continue
        cand, t2, s2 = _descend(search, cand, t2, s2)
        if not better(score, s2):
            dev, timing, score, stall = cand, t2, s2, 0
        else:
            stall += 1
            if stall >= 8 and search.best is not None:
                dev, timing, score, stall = list(search.best.dev), search.best, search.best_score, 0


def optimize(prob: Problem, objective: Objective, options: SearchOptions,
             baselines: Sequence[Timing] = ()) -> Timing:
    """Minimize ``(objective, makespan)``; never worse than any of ``baselines``.

    1. Portfolio: HEFT-style list scheduling with several priority lists (upward rank,
       PEFT's rank_oct, upward + downward rank, communication-blind and -heavy ranks)
       crossed with three device-selection rules (earliest finish, earliest finish plus
       PEFT's optimistic cost, plus an exact-transfer lookahead), single-device schedules,
       and objective-specific placements (least energy, balanced load).
    2. Iterated local search from the best of them: move a task on the critical chain
       to another device, swap it with a task elsewhere, gather it with its neighbours,
       hoist it ahead of the task delaying it, or reorder by real bottom levels, until
       no move helps; then perturb a few placements and descend again; keep the best.
       The number of evaluations scales down with graph size (``SearchOptions``).
    3. Graphs of at most ``polish_tasks`` tasks: a node-limited branch and bound seeded
       with the result (often proves it optimal).
    """
    search = _Search(prob, objective, options)
    for t in baselines:
        search.offer(t)
    _portfolio(search)
    if search.best is None:
        raise ScheduleInfeasible("no list schedule fits the devices' memory")
    if prob.n > 1 and prob.p > 1:
        _iterated_local_search(search)
    best = search.best
    if prob.n <= options.polish_tasks and best is not None:
        best = exact(prob, objective, best, max_nodes=options.polish_nodes).timing
    return best
