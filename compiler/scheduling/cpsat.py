"""Placement and order by a constraint solver: an OR-Tools CP-SAT model of the whole schedule.

Each task has one start and an optional fixed-size interval per unit (a device, or a pool
of interchangeable devices, see ``units``) with that unit's cost; exactly one is present.
A device runs one task at a time (no-overlap), a pool of k devices k (a cumulative).
An edge delays its consumer by the transfer time between the two ends' devices. Memory
capacities (task memory while it runs, its output until the last consumer starts) are
cumulatives per device. Objectives: makespan, energy (busy power times time plus idle
power over the makespan, times PUE) or the period (the busiest device or link).

Times are integer ticks: exact when every cost and transfer is a multiple of a power of
ten, else 10^6 ticks over the warm start's makespan (the solver's bound is then corrected
by half a tick per task and edge on a path). The solver is warm-started with the best
heuristic schedule (hints), runs one worker (or a fixed count, interleaved) under a
deterministic time limit and a fixed seed, so the same problem gives the same schedule.
Its solution is re-timed with the real costs and kept only if it beats the warm start.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

from ortools.sat.python import cp_model
from planc.compiler.scheduling.cpuguard import Guard
from planc.compiler.scheduling.listsched import ScheduleInfeasible, Timing, fixed_decode
from planc.compiler.scheduling.memory import output_bytes, timing_fits
from planc.compiler.scheduling.problem import Problem
from planc.compiler.scheduling.schedule import Objective, better, score_of
from planc.compiler.scheduling.units import assign_pooled, units_of

log = logging.getLogger(__name__)

__all__ = ["SolverOptions", "SolverResult", "fits_solver", "solve"]

INF = math.inf
MAX_INTERVALS = 2_000  # optional intervals (tasks x units) above which auto leaves the solver out
MAX_LINK_TERMS = 60_000  # edge x device-pair literals for the period's link loads


@dataclass(frozen=True, slots=True)
class SolverOptions:
    """Effort and reproducibility of ``solve``.

    Attributes:
        time: the solver's deterministic time limit (its own work units, about seconds).
        seed: the solver's random seed.
        workers: search workers; more than one are interleaved deterministically in one thread.
        cpu_s: a CPU-second safety on top of ``time`` (``cpuguard``); None: none.
    """

    time: float = 2.0
    seed: int = 0
    workers: int = 1
    cpu_s: float | None = None


@dataclass(frozen=True, slots=True)
class SolverResult:
    """The solver's schedule (None: none found beyond the warm start), a lower bound on the
    objective (0: none) and whether the solver proved optimality."""

    timing: Timing | None
    bound: float
    proven: bool
    status: str


def fits_solver(prob: Problem, *, pool: bool = True) -> bool:
    """Whether the model is small enough to build and search within a compile."""
    units = units_of(prob, pool=pool and not prob.memory_limited)
    return prob.n * len(units) <= MAX_INTERVALS


def _scale(values: Sequence[float], horizon: float) -> tuple[float, bool]:
    """Ticks per second, and whether every value is a whole number of ticks."""
    for s in (1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6):
        if horizon * s > 1e9:
            break
        if all(abs(v * s - round(v * s)) <= 1e-9 * max(1.0, v * s) for v in values):
            return s, True
    return 1e6 / horizon, False


class _Model:
    """The CP-SAT model of one problem (see the module docstring)."""

    def __init__(self, prob: Problem, objective: Objective, incumbent: Timing) -> None:
        self.prob, self.objective = prob, objective
        pool = not prob.memory_limited and objective is not Objective.THROUGHPUT
        self.units = units_of(prob, pool=pool)
        self.unit_of = {d: k for k, u in enumerate(self.units) for d in u}
        values = [c for row in prob.cost for c in row if c < INF] + [c for row in prob.comm for c in row]
        self.scale, self.exact = _scale(values, max(incumbent.makespan, 1e-300))
        self.m = cp_model.CpModel()
        self.dur = [[self._ticks(prob.cost[i][u[0]]) for u in self.units] for i in range(prob.n)]
        self.hint = self._hint_ticks(incumbent)
        self.hint_units = [self.unit_of[d] for d in incumbent.dev]
        self._build()

    def _ticks(self, seconds: float) -> int:
        return INF if seconds == INF else round(seconds * self.scale)  # type: ignore[return-value]

    def _comm(self, e: int, a: int, b: int) -> int:
        """Ticks to move edge ``e`` from unit ``a`` to unit ``b``."""
        if a == b:
            return 0
        p = self.prob.p
        return self._ticks(self.prob.comm[e][self.units[a][0] * p + self.units[b][0]])

    def _hint_ticks(self, t: Timing) -> tuple[list[int], list[int]]:
        """The warm start re-timed in ticks: same devices, same order per device."""
        prob = self.prob
        start, finish = [0] * prob.n, [0] * prob.n
        avail: dict[int, int] = {}
        for i in sorted(range(prob.n), key=lambda i: (t.start[i], i)):
            d = t.dev[i]
            a = self.unit_of[d]
            s = avail.get(d, 0)
            for u, e in prob.preds[i]:
                s = max(s, finish[u] + self._comm(e, self.unit_of[t.dev[u]], a))
            start[i], finish[i] = s, s + self.dur[i][a]
            avail[d] = finish[i]
        return start, finish

    def _build(self) -> None:
        prob, m = self.prob, self.m
        _, hf = self.hint
        if self.objective is Objective.LATENCY:
            horizon = max(hf, default=0)
        else:  # everything in series fits: a longer makespan may save energy or period
            horizon = max(max(hf, default=0), sum(max(r for r in row if r != INF) for row in self.dur)
                          + sum(max(self._comm(e, a, b) for a in range(len(self.units)) for b in range(len(self.units)))
                                for e in range(len(prob.edges))))
        self.horizon = horizon
        self.start = [m.new_int_var(0, horizon, f"s{i}") for i in range(prob.n)]
        self.x: list[dict[int, cp_model.IntVar]] = []
        self.ivs: list[list[tuple[int, cp_model.IntervalVar]]] = [[] for _ in self.units]
        self.end = []
        for i in range(prob.n):
            lits = {}
            for a, d in enumerate(self.dur[i]):
                if d == INF or d > horizon:
                    continue
                lits[a] = m.new_bool_var(f"x{i}_{a}")
                self.ivs[a].append((i, m.new_optional_fixed_size_interval_var(self.start[i], d, lits[a], f"i{i}_{a}")))
            m.add_exactly_one(lits.values())
            self.x.append(lits)
            end = self.start[i] + sum(self.dur[i][a] * x for a, x in lits.items())
            self.end.append(end)
            m.add(end <= horizon)
        for a, unit in enumerate(self.units):
            ivs = [iv for _, iv in self.ivs[a]]
            if len(unit) == 1:
                m.add_no_overlap(ivs)
            else:
                m.add_cumulative(ivs, [1] * len(ivs), len(unit))
        self._precedences()
        if self.prob.memory_limited:
            self._memory()
        self._objective()
        self._hints()

    def _precedences(self) -> None:
        prob, m = self.prob, self.m
        nu = len(self.units)
        for e, (u, v) in enumerate(prob.edges):
            m.add(self.start[v] >= self.end[u])
            if all(self._comm(e, a, b) == 0 for a in range(nu) for b in range(nu)):
                continue
            for b, xb in self.x[v].items():
                delay = sum(self._comm(e, a, b) * xa for a, xa in self.x[u].items() if self._comm(e, a, b))
                if not isinstance(delay, int):
                    m.add(self.start[v] >= self.end[u] + delay).only_enforce_if(xb)

    def _memory(self) -> None:
        """Task memory while it runs, its output from its finish until its last consumer starts."""
        prob, m = self.prob, self.m
        caps = [c for c in prob.capacity if c < INF]
        q = max(max(caps, default=1.0) / 1e6, 1.0)  # bytes per demand unit
        out = output_bytes(prob)
        for a, (d,) in enumerate(self.units):
            cap = prob.capacity[d]
            if cap == INF:
                continue
            ivs, demands = [], []
            for i, iv in self.ivs[a]:
                if prob.mem[i]:
                    ivs.append(iv)
                    demands.append(math.ceil(prob.mem[i] / q))
                if prob.succs[i] and out[i]:
                    release = self.m.new_int_var(0, self.horizon, f"r{i}_{a}")
                    for j, _ in prob.succs[i]:
                        m.add(release >= self.start[j])
                    size = m.new_int_var(0, self.horizon, f"o{i}_{a}")
                    done = self.start[i] + self.dur[i][a]  # its finish when it runs on this unit
                    ivs.append(m.new_optional_interval_var(done, size, release, self.x[i][a], f"out{i}_{a}"))
                    demands.append(math.ceil(out[i] / q))
            if ivs:
                m.add_cumulative(ivs, demands, int(cap // q))

    def _objective(self) -> None:
        prob, m = self.prob, self.m
        sinks = [i for i in range(prob.n) if not prob.succs[i]]
        self.span = m.new_int_var(0, self.horizon, "makespan")
        for i in sinks:
            m.add(self.span >= self.end[i])
        # Redundant, for the solver's LP: a unit's busy time fits in the makespan (k-fold for a pool).
        for a, unit in enumerate(self.units):
            if self.ivs[a]:
                m.add(sum(self.dur[i][a] * self.x[i][a] for i, _ in self.ivs[a]) <= len(unit) * self.span)
        if self.objective is Objective.LATENCY:
            m.minimize(self.span)
        elif self.objective is Objective.ENERGY:
            top = max(max(prob.watts), max(prob.idle_watts), 1e-300)
            w = [round((prob.watts[u[0]] - prob.idle_watts[u[0]]) / top * 1000) for u in self.units]
            idle = round(sum(prob.idle_watts) / top * 1000)
            busy = sum(w[a] * self.dur[i][a] * x for i in range(prob.n) for a, x in self.x[i].items())
            m.minimize(busy + idle * self.span)
        else:
            self.period = m.new_int_var(0, self.horizon, "period")
            for a in range(len(self.units)):
                m.add(self.period >= sum(self.dur[i][a] * self.x[i][a] for i, _ in self.ivs[a]))
            self._link_loads()
            m.minimize(self.period)

    def _link_loads(self) -> None:
        prob, m = self.prob, self.m
        nu = len(self.units)
        pairs = [(a, b) for a in range(nu) for b in range(nu) if a != b]
        if len(prob.edges) * len(pairs) > MAX_LINK_TERMS:
            return  # the re-timed schedule's real period decides whether it is kept
        loads: dict[tuple[int, int], list] = {ab: [] for ab in pairs}
        for e, (u, v) in enumerate(prob.edges):
            for a, b in pairs:
                c = self._comm(e, a, b)
                if c and a in self.x[u] and b in self.x[v]:
                    y = m.new_bool_var(f"y{e}_{a}_{b}")
                    m.add_bool_or([self.x[u][a].Not(), self.x[v][b].Not(), y])
                    loads[(a, b)].append(c * y)
        for terms in loads.values():
            if terms:
                m.add(self.period >= sum(terms))

    def _hints(self) -> None:
        """The warm start, complete: every start, every unit literal, the makespan."""
        hs, hf = self.hint
        for i in range(self.prob.n):
            self.m.add_hint(self.start[i], hs[i])
            for a, x in self.x[i].items():
                self.m.add_hint(x, a == self.hint_units[i])
        if self.objective is Objective.LATENCY:
            self.m.add_hint(self.span, max(hf, default=0))


def _timing(model: _Model, solver: cp_model.CpSolver) -> Timing | None:
    """The solver's placement and device order re-timed with the real costs."""
    prob = model.prob
    start = [solver.value(s) for s in model.start]
    unit = [next(a for a, x in model.x[i].items() if solver.boolean_value(x)) for i in range(prob.n)]
    finish = [start[i] + model.dur[i][unit[i]] for i in range(prob.n)]
    dev = [0] * prob.n
    for a, devices in enumerate(model.units):
        tasks = [i for i in range(prob.n) if unit[i] == a]
        for i, d in assign_pooled(devices, tasks, start, finish).items():
            dev[i] = d
    order = sorted(range(prob.n), key=lambda i: (start[i], i))
    try:
        timing = fixed_decode(prob, order, dev, insertion=False)
    except ScheduleInfeasible:
        return None
    if prob.memory_limited and not timing_fits(prob, *timing):
        return None
    return timing


def solve(prob: Problem, objective: Objective, incumbent: Timing,
          options: SolverOptions = SolverOptions()) -> SolverResult:
    """Improve ``incumbent`` with CP-SAT; the result's timing is None unless strictly better."""
    if prob.n == 0 or incumbent.makespan <= 0:
        return SolverResult(None, 0.0, True, "trivial")
    model = _Model(prob, objective, incumbent)
    solver = cp_model.CpSolver()
    params = solver.parameters
    params.num_workers = max(1, options.workers)
    params.interleave_search = options.workers > 1
    params.random_seed = options.seed
    params.max_deterministic_time = max(options.time, 0.0)
    params.log_search_progress = False
    # Energetic reasoning on the cumulatives proves most bounds in milliseconds (measured on
    # STG-style graphs: without it one worker left a 20 % gap open after 2 s).
    params.use_overload_checker_in_cumulative = True
    params.use_timetable_edge_finding_in_cumulative = True
    with Guard(solver, options.cpu_s) as guard:
        status = solver.solve(model.m)
    if guard.fired:
        log.warning("schedule: the solver stopped at its CPU safety of %.1f s before its "
                    "deterministic limit; the schedule may differ from run to run", options.cpu_s)
    name = solver.status_name(status)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return SolverResult(None, 0.0, False, name)
    timing = _timing(model, solver)
    if timing is not None and not better(score_of(prob, timing, objective), score_of(prob, incumbent, objective)):
        timing = None
    bound, proven = 0.0, False
    if objective is Objective.LATENCY:
        ticks = solver.best_objective_bound
        if model.exact:
            bound, proven = ticks / model.scale, status == cp_model.OPTIMAL
        else:
            bound = max(ticks - prob.n - min(len(prob.edges), prob.n), 0.0) / model.scale
    return SolverResult(timing, bound, proven, name)
