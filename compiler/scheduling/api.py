"""The one entry point: ``schedule(graph, platform, objective=..., method=...)``."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable

import networkx as nx
from planc.compiler.scheduling import budget
from planc.compiler.scheduling.bounds import Bounds, lower_bounds, lp_applies
from planc.compiler.scheduling.exact import ExactResult, exact
from planc.compiler.scheduling.greedy import greedy
from planc.compiler.scheduling.heft import heft
from planc.compiler.scheduling.listsched import ScheduleInfeasible, Timing
from planc.compiler.scheduling.optimize import SearchOptions, optimize
from planc.compiler.scheduling.peft import peft
from planc.compiler.scheduling.platform import Platform
from planc.compiler.scheduling.problem import Problem, ScheduleInputError, compile_problem
from planc.compiler.scheduling.schedule import Method, Objective, Schedule

__all__ = ["AUTO_EXACT_NODES", "AUTO_EXACT_TASKS", "EXACT_MAX_TASKS", "default_opt_time", "schedule"]

log = logging.getLogger(__name__)

AUTO_EXACT_TASKS = 10  # method "auto" searches exactly up to this many tasks...
AUTO_EXACT_NODES = 300_000  # ...within this many branch-and-bound nodes (a few seconds)
EXACT_MAX_TASKS = 16   # method "exact" refuses bigger graphs unless given a budget


def default_opt_time(n: int) -> float:
    """The solver's deterministic time limit for a graph of ``n`` tasks: 0.1 plus 0.4 per 100
    tasks, at most 1 (it stops sooner when it proves its schedule optimal). CP-SAT's
    deterministic units are not seconds: on models with transfer delays one unit measured
    10-15 CPU seconds on this project's build host, on pooled identical devices less."""
    return min(1.0, 0.1 + n / 250)

_BASELINES: dict[Method, Callable[[Problem], Timing]] = {Method.HEFT: heft, Method.PEFT: peft, Method.GREEDY: greedy}


def _ours(prob: Problem, objective: Objective, seed: int, budget_s: float | None, polish: bool = True) -> Timing:
    # HEFT and PEFT are members of the optimizer's portfolio; greedy is offered on top.
    extra = []
    if prob.n <= 2000:
        try:
            extra.append(greedy(prob))
        except ScheduleInfeasible:
            pass
    options = SearchOptions(seed=seed, budget_s=budget_s)
    if not polish:
        options = dataclasses.replace(options, polish_tasks=0)
    return optimize(prob, objective, options, extra)


def _exact(prob: Problem, objective: Objective, seed: int, budget_s: float | None,
           max_nodes: int | None = None) -> ExactResult:
    if prob.n > EXACT_MAX_TASKS and budget_s is None:
        raise ScheduleInputError(f"method 'exact' takes graphs of at most {EXACT_MAX_TASKS} tasks without a "
                                 f"budget_s (got {prob.n}); use method 'ours' or give budget_s")
    t0 = time.perf_counter()
    try:
        incumbent: Timing | None = _ours(prob, objective, seed, None if budget_s is None else budget_s / 4,
                                         polish=False)
    except ScheduleInfeasible:
        incumbent = None  # the heuristics' memory reservations are conservative; search anyway
    left = None if budget_s is None else max(budget_s - (time.perf_counter() - t0), 0.0)
    result = exact(prob, objective, incumbent, budget_s=left, max_nodes=max_nodes)
    if not result.proven:
        log.log(logging.INFO if max_nodes else logging.WARNING,
                "exact search stopped by its budget after %d nodes: the schedule is not proven optimal",
                result.nodes)
    return result


def _solver(prob: Problem, objective: Objective, incumbent: Timing, seed: int,
            opt_time: float | None) -> tuple[Timing | None, Bounds]:
    """CP-SAT warm-started with ``incumbent``, then large-neighbourhood search where it did not
    prove optimality, by the budget rule (``budget``): its strictly better schedule (or None)
    and the bounds."""
    from planc.compiler.scheduling.cpsat import SolverOptions, solve  # ortools loads only when used
    from planc.compiler.scheduling.lns import lns

    c0 = time.process_time()
    base = lower_bounds(prob, objective, lp=False)
    total = budget.cap(prob.n) if opt_time is None else opt_time
    cpu = budget.cpu_cap(prob.n, opt_time)
    full = budget.first(prob.n, total)
    result = solve(prob, objective, incumbent, SolverOptions(time=full, seed=seed, cpu_s=cpu))
    bounds = dataclasses.replace(base, solver=result.bound, proven=result.proven, solver_status=result.status)
    timing = result.timing
    if not result.proven and lp_applies(prob, objective):  # the costlier bound, only where a gap is open
        bounds = dataclasses.replace(bounds, lp=lower_bounds(prob, objective).lp)
    best = timing or incumbent
    if objective is not Objective.LATENCY or result.proven or best.makespan <= bounds.best * (1 + 1e-9):
        return timing, dataclasses.replace(bounds, proven=bounds.proven or (
            objective is Objective.LATENCY and best.makespan <= bounds.best * (1 + 1e-9)))
    share = budget.lns_share(total - full, budget.stake(best.makespan, bounds.best))
    if share > 0 and prob.n > 1:
        found = lns(prob, best, budget=share, seed=seed, lower=bounds.best,
                    cpu_limit=cpu - (time.process_time() - c0))
        log.info("schedule: neighbourhood search, %d rounds, %d improvements, %.2f of %.2f units",
                 found.rounds, found.improvements, found.spent, share)
        timing = found.timing or timing
    if (timing or incumbent).makespan <= bounds.best * (1 + 1e-9):
        bounds = dataclasses.replace(bounds, proven=True)
    return timing, bounds


def schedule(
    graph: nx.DiGraph,
    platform: Platform,
    *,
    objective: Objective | str = "latency",
    method: Method | str = "auto",
    seed: int = 0,
    budget_s: float | None = None,
    opt_time: float | None = None,
) -> Schedule:
    """Place and order the tasks of ``graph`` on ``platform``'s devices.

    Args:
        graph: a DAG. Each node has ``cost``: device name -> seconds (``math.inf`` or a
            missing device: cannot run there) and optionally ``memory`` (bytes resident
            while it runs). Each edge optionally has ``bytes`` (moved when the endpoints run
            on different devices: ``latency + bytes / bandwidth`` of the platform's link) or
            ``comm`` (seconds charged when they do, HEFT-paper style; wins over ``bytes``
            for the transfer time).
        platform: the devices, their memory, power and links.
        objective: ``latency`` (makespan), ``energy`` (joules times PUE) or ``throughput``
            (steady-state period of pipelined runs); ties are broken by the makespan.
        method: ``heft``, ``peft``, ``greedy`` (baselines; they minimize latency whatever
            the objective), ``exact`` (branch and bound, optimal; small graphs), ``ours``
            (portfolio + iterated local search; never worse than HEFT or PEFT on the
            objective), ``cpsat`` (``ours``, then the OR-Tools CP-SAT model warm-started
            with it; never worse) or ``auto`` (``exact`` up to AUTO_EXACT_TASKS tasks,
            stopped after AUTO_EXACT_NODES nodes; what it does not prove optimal, and every
            bigger graph, goes to ``cpsat`` unless the model is above the solver's size,
            where ``ours`` alone runs). The schedule's ``method`` names the algorithm whose
            schedule was kept; its ``bounds`` hold the lower bounds and the solver's status.
        seed: seeds ``ours``' random search and the solver; the same inputs and seed give
            the same result.
        budget_s: wall-clock cap for ``ours`` and ``exact`` (None: an evaluation budget
            that scales with the graph, and an unbounded exact search).
        opt_time: the solver's total deterministic time (None: ``budget.cap``, by graph size);
            the full model gets a share, neighbourhood search what the gap left open earns
            (see ``budget``). It is not wall time, so the result does not depend on the
            machine's load; a CPU-second safety (``budget.cpu_cap``) stops the solver where
            the units cost far more CPU than usual, with a warning that the result may vary.

    Returns:
        A Schedule: per task device, start and finish; makespan, energy, period.

    Raises:
        ScheduleInputError: a cycle, a malformed or negative cost, a task that can run on no
            device, an unknown objective or method (ValueError), or no schedule fits the
            memory capacities (ScheduleInfeasible).
    """
    objective = Objective.parse(objective)
    method = Method.parse(method)
    prob = compile_problem(graph, platform)
    if method in _BASELINES:
        return Schedule.build(prob, _BASELINES[method](prob), objective, method)
    if method is Method.EXACT:
        result = _exact(prob, objective, seed, budget_s)
        bounds = dataclasses.replace(lower_bounds(prob, objective), proven=result.proven)
        return Schedule.build(prob, result.timing, objective, method, bounds)
    if method is Method.OURS:
        return Schedule.build(prob, _ours(prob, objective, seed, budget_s), objective, method,
                              lower_bounds(prob, objective))
    return _solved(prob, objective, method, seed, budget_s, opt_time)


def _solved(prob: Problem, objective: Objective, method: Method, seed: int, budget_s: float | None,
            opt_time: float | None) -> Schedule:
    """``auto`` and ``cpsat``: the best heuristic (a proven branch and bound ends it), then the solver."""
    from planc.compiler.scheduling.cpsat import fits_solver

    found = Method.OURS
    if method is Method.AUTO and prob.n <= AUTO_EXACT_TASKS:
        result = _exact(prob, objective, seed, budget_s, AUTO_EXACT_NODES)
        if result.proven:
            bounds = dataclasses.replace(lower_bounds(prob, objective), proven=True)
            return Schedule.build(prob, result.timing, objective, Method.EXACT, bounds)
        incumbent, found = result.timing, Method.EXACT
    else:
        incumbent = _ours(prob, objective, seed, budget_s)
    if method is Method.AUTO and not fits_solver(prob):
        log.info("schedule: %d tasks on %d devices is above the solver's size; heuristics only", prob.n, prob.p)
        return Schedule.build(prob, incumbent, objective, found, lower_bounds(prob, objective))
    better_timing, bounds = _solver(prob, objective, incumbent, seed, opt_time)
    if better_timing is not None:
        return Schedule.build(prob, better_timing, objective, Method.CPSAT, bounds)
    return Schedule.build(prob, incumbent, objective, found, bounds)
