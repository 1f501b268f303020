"""Merge candidates re-chosen by a constraint solver: a CP-SAT set partition with placement.

The order DP only merges runs that are contiguous in the topological orders it tries.
Here the candidate groups are every legal run (up to `max_len` tasks) of many
topological orders, plus the DP's own groups: each such run is convex. CP-SAT picks a
set of them that covers every task once, a device for each, and pays the group times
plus every transfer between different devices. The quotient graph must stay acyclic:
each task gets a rank, equal inside a group, strictly growing along an edge that leaves
its group (ranks exist exactly when the quotient is acyclic). Warm-started with the
DP's plan, one worker, a fixed seed and a deterministic time limit; the plan it
returns is kept only when it costs less than the DP's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise

from ortools.sat.python import cp_model
from planc.compiler.merging.dp import INF, Plan, Pricing
from planc.compiler.merging.orders import topo_orders

__all__ = ["MergeSolverOptions", "candidates", "solve_merge"]


@dataclass(frozen=True, slots=True)
class MergeSolverOptions:
    """Candidate set size and solver effort (deterministic time, seed)."""

    orders: int = 64
    max_len: int = 12
    max_candidates: int = 6000
    time: float = 1.0
    seed: int = 0


def candidates(p: Pricing, plan: Plan, options: MergeSolverOptions) -> list[tuple[int, ...]]:
    """Legal groups: runs of the orders (and the plan's groups), each priced finite somewhere."""
    seen: dict[tuple[int, ...], None] = {(m,): None for m in range(p.n)}
    for members, _ in plan:
        seen[tuple(sorted(members))] = None
    D = len(p.devices)
    for order in topo_orders(p, options.orders, options.seed):
        for a in range(p.n):
            for b in range(a + 2, min(a + options.max_len, p.n) + 1):
                g = tuple(sorted(order[a:b]))
                if g in seen:
                    continue
                if all(p.group_seconds(g, d) == INF for d in range(D)):
                    break  # longer runs from a hold this one: illegal too (barrier, memory, size)
                seen[g] = None
                if len(seen) >= options.max_candidates:
                    return list(seen)
    return list(seen)


def solve_merge(p: Pricing, plan: Plan, options: MergeSolverOptions = MergeSolverOptions()) -> Plan | None:
    """A cheaper partition and placement than ``plan`` (None: none found within the budget)."""
    D = len(p.devices)
    groups = candidates(p, plan, options)
    base = sum(p.total(plan))
    if not math.isfinite(base) or base <= 0:
        return None
    scale = 1e9 / base  # integer costs: 1e-9 of the plan's cost per unit
    m = cp_model.CpModel()
    z: dict[tuple[int, int], cp_model.IntVar] = {}
    cost_terms = []
    covering: list[list[cp_model.IntVar]] = [[] for _ in range(p.n)]
    on: list[list[list[cp_model.IntVar]]] = [[[] for _ in range(D)] for _ in range(p.n)]
    for k, g in enumerate(groups):
        for d in range(D):
            s = p.group_seconds(g, d)
            if s == INF:
                continue
            z[(k, d)] = x = m.new_bool_var(f"z{k}_{d}")
            cost_terms.append(round(s * scale) * x)
            for i in g:
                covering[i].append(x)
                on[i][d].append(x)
    for i in range(p.n):
        m.add_exactly_one(covering[i])
    rank = [m.new_int_var(0, p.n, f"r{i}") for i in range(p.n)]
    for k, g in enumerate(groups):
        if len(g) > 1:
            chosen = [z[(k, d)] for d in range(D) if (k, d) in z]
            if not chosen:
                continue
            pick = m.new_bool_var(f"g{k}")
            m.add(sum(chosen) == pick)
            for a, b in pairwise(g):
                m.add(rank[a] == rank[b]).only_enforce_if(pick)
    where = [[m.new_bool_var(f"y{i}_{d}") for d in range(D)] for i in range(p.n)]
    for i in range(p.n):
        for d in range(D):
            m.add(where[i][d] == sum(on[i][d]))
    edge_t = p.edge_t
    member_of: list[list[int]] = [[] for _ in range(p.n)]
    for k, g in enumerate(groups):
        for i in g:
            member_of[i].append(k)
    for e, (u, v, _) in enumerate(p.edges):
        shared = [z[(k, d)] for k in set(member_of[u]) & set(member_of[v]) for d in range(D) if (k, d) in z]
        m.add(rank[v] >= rank[u] + 1 - sum(shared))
        m.add(rank[v] >= rank[u])
        for a in range(D):
            for b in range(D):
                c = round(float(edge_t[e, a, b]) * scale)
                if a != b and c > 0:
                    w = m.new_bool_var(f"w{e}_{a}_{b}")
                    m.add_bool_or([where[u][a].Not(), where[v][b].Not(), w])
                    cost_terms.append(c * w)
    m.minimize(sum(cost_terms))
    _hint(m, p, plan, groups, z, rank)
    solver = cp_model.CpSolver()
    params = solver.parameters
    params.num_workers = 1
    params.random_seed = options.seed
    params.max_deterministic_time = options.time
    status = solver.solve(m)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    picked = [(groups[k], d) for (k, d), x in z.items() if solver.boolean_value(x)]
    picked.sort(key=lambda gd: (solver.value(rank[gd[0][0]]), gd[0]))
    new: Plan = list(picked)
    return new if sum(p.total(new)) < base * (1 - 1e-9) else None


def _hint(m: cp_model.CpModel, p: Pricing, plan: Plan, groups: list[tuple[int, ...]],
          z: dict[tuple[int, int], cp_model.IntVar], rank: list[cp_model.IntVar]) -> None:
    """The DP's plan as the solver's first solution: its groups, devices and quotient ranks."""
    index = {g: k for k, g in enumerate(groups)}
    picked = {(index[tuple(sorted(g))], d) for g, d in plan}
    for key, x in z.items():
        m.add_hint(x, key in picked)
    for r, (g, _) in enumerate(plan):  # plan groups are in a topological order of the quotient
        for i in g:
            m.add_hint(rank[i], r)
