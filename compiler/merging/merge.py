"""Which compute tasks merge into one module, and on which device each group runs."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import networkx as nx
import numpy as np
from planc.compiler.costs.model import ComputeFacts, CostModel
from planc.compiler.merging.dp import (
    Plan,
    Pricing,
    count_downsets,
    exact_dp,
    exhaustive_plan,
    quotient_order,
)
from planc.compiler.merging.orders import order_dp, polish, segments, topo_orders

__all__ = [
    "Barrier",
    "Compute",
    "Group",
    "GroupCostFn",
    "MergeError",
    "MergeNode",
    "MergeOptions",
    "MergeProblem",
    "MergeResult",
    "exhaustive_merge",
    "legality_errors",
    "merge",
    "partition_cost",
]

log = logging.getLogger(__name__)

GroupCostFn = Callable[[tuple[str, ...], str], float]


@dataclass(frozen=True, slots=True)
class Compute:
    """A mergeable compute task. `memory_bytes` is its working memory (default: its
    bytes_accessed); `devices` the instances it may run on (default: all)."""

    facts: ComputeFacts
    memory_bytes: float | None = None
    devices: frozenset[str] | None = None

    @property
    def memory(self) -> float:
        return self.facts.bytes_accessed if self.memory_bytes is None else self.memory_bytes


@dataclass(frozen=True, slots=True)
class Barrier:
    """A task that is never merged (tool, gate, loop, builtin on the host): it runs alone
    on `device` (default: the deployment's host) for `seconds`."""

    seconds: float = 0.0
    device: str | None = None


MergeNode = Compute | Barrier


class MergeError(ValueError):
    """A merge problem that is malformed or has no legal solution."""


@dataclass(frozen=True, slots=True)
class MergeProblem:
    """A DAG of tasks: names, one MergeNode each, and edges (src, dst, bytes)."""

    names: tuple[str, ...]
    nodes: tuple[MergeNode, ...]
    edges: tuple[tuple[str, str, float], ...]

    @classmethod
    def build(cls, tasks: Mapping[str, MergeNode] | Iterable[tuple[str, MergeNode]],
              edges: Iterable[tuple[str, str, float]] = ()) -> MergeProblem:
        """Checks names, node types and edges (known ends, bytes >= 0, no cycle); sums duplicate edges."""
        items = list(tasks.items() if isinstance(tasks, Mapping) else tasks)
        names = tuple(n for n, _ in items)
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise MergeError(f"task '{dup}' appears twice")
        for name, node in items:
            if not isinstance(node, Compute | Barrier):
                raise MergeError(f"task '{name}': expected Compute or Barrier, found {type(node).__name__}")
        summed: dict[tuple[str, str], float] = {}
        for u, v, nbytes in edges:
            for end in (u, v):
                if end not in names:
                    raise MergeError(f"edge {u} -> {v}: unknown task '{end}'")
            if u == v or not (isinstance(nbytes, int | float) and math.isfinite(nbytes) and nbytes >= 0):
                raise MergeError(f"edge {u} -> {v}: expected two tasks and bytes >= 0, found {nbytes!r}")
            summed[(u, v)] = summed.get((u, v), 0.0) + float(nbytes)
        problem = cls(names, tuple(n for _, n in items), tuple((u, v, b) for (u, v), b in summed.items()))
        graph = problem.digraph()
        if not nx.is_directed_acyclic_graph(graph):
            cycle = " -> ".join(u for u, _ in nx.find_cycle(graph))
            raise MergeError(f"the task graph has a cycle: {cycle}")
        return problem

    @classmethod
    def from_digraph(cls, graph: nx.DiGraph, *, node_attr: str = "task", bytes_attr: str = "bytes") -> MergeProblem:
        """From a DiGraph whose nodes carry a MergeNode and whose edges carry bytes."""
        missing = [n for n in graph.nodes if node_attr not in graph.nodes[n]]
        if missing:
            raise MergeError(f"task '{missing[0]}' has no '{node_attr}' attribute")
        return cls.build([(str(n), graph.nodes[n][node_attr]) for n in graph.nodes],
                         [(str(u), str(v), d.get(bytes_attr, 0.0)) for u, v, d in graph.edges(data=True)])

    def digraph(self) -> nx.DiGraph:
        g = nx.DiGraph()
        g.add_nodes_from(self.names)
        g.add_weighted_edges_from(self.edges, weight="bytes")
        return g


@dataclass(frozen=True, slots=True)
class MergeOptions:
    """Bounds and search effort. `group_cost` replaces the roofline price of a group
    (members in topological order, device instance) -> seconds; it turns off the
    vectorized fast path, so keep it cheap. Graphs of at most `solver_max_tasks` tasks
    that the exact DP does not take get the order DP's candidates re-chosen by CP-SAT
    (`merge_solver`) within `solver_time` deterministic seconds (0: off)."""

    max_group: int = 64
    exact_max_tasks: int = 16
    exact_budget: int = 100_000
    orders: int = 6
    refine: int = 2
    work_budget: int = 30_000
    seed: int = 0
    group_cost: GroupCostFn | None = None
    solver_max_tasks: int = 40
    solver_time: float = 3.0

    def __post_init__(self) -> None:
        if self.max_group < 1 or self.orders < 1 or self.refine < 0:
            raise MergeError("MergeOptions: max_group and orders must be >= 1, refine >= 0")


@dataclass(frozen=True, slots=True)
class Group:
    """Tasks that become one module (or a lone barrier), its device and its seconds there."""

    members: tuple[str, ...]
    device: str
    seconds: float
    barrier: bool = False


@dataclass(frozen=True, slots=True)
class MergeResult:
    """Groups in a topological order of the quotient graph; cost = compute_s + transfer_s.

    `exact` says the search covered every legal partition and placement; `orders` counts
    the topological orders the heuristic DP tried (0 when exact)."""

    groups: tuple[Group, ...]
    cost: float
    compute_s: float
    transfer_s: float
    exact: bool
    orders: int = 0

    @property
    def placement(self) -> dict[str, str]:
        return {m: g.device for g in self.groups for m in g.members}


def _pricing(problem: MergeProblem, model: CostModel, max_group: int,
             group_cost: GroupCostFn | None) -> Pricing:
    """Pricing with tasks indexed in a topological order (input order breaks ties)."""
    dep = model.deployment
    devices = list(dep.names)
    rank = {n: i for i, n in enumerate(problem.names)}
    order = list(nx.lexicographical_topological_sort(problem.digraph(), key=rank.__getitem__))
    nodes = [problem.nodes[rank[n]] for n in order]
    allowed = np.ones((len(order), len(devices)), dtype=bool)
    barrier_dev, barrier_s = [], []
    for i, (name, node) in enumerate(zip(order, nodes)):
        want = node.devices if isinstance(node, Compute) else {node.device or dep.host}
        if want is not None:
            unknown = sorted(set(want) - set(devices))
            if unknown:
                raise MergeError(f"task '{name}' names unknown device '{unknown[0]}' "
                                 f"(deployment '{dep.name}' has: {', '.join(devices)})")
            allowed[i] = [d in want for d in devices]
        barrier_dev.append(-1 if isinstance(node, Compute) else devices.index(node.device or dep.host))
        barrier_s.append(node.seconds if isinstance(node, Barrier) else 0.0)
    idx = {n: i for i, n in enumerate(order)}
    p = Pricing(
        model, order, devices, [n.facts if isinstance(n, Compute) else None for n in nodes],
        np.array([n.memory if isinstance(n, Compute) else 0.0 for n in nodes], dtype=float), allowed,
        barrier_dev, barrier_s, np.array([dep.device(d).spec.memory_bytes for d in devices]),
        [(idx[u], idx[v], b) for u, v, b in problem.edges], max_group, group_cost,
    )
    for i, name in enumerate(order):
        if all(p.group_seconds((i,), d) == math.inf for d in range(len(devices))):
            raise MergeError(f"task '{name}' fits no device: it needs {p.memory[i]:.3g} bytes and may run on "
                             f"{', '.join(d for d, a in zip(devices, allowed[i]) if a) or 'no device'}")
    return p


def _result(p: Pricing, plan: Plan, *, exact: bool, orders: int) -> MergeResult:
    compute, transfer = p.total(plan)
    groups = tuple(Group(tuple(p.names[m] for m in members), p.devices[d], p.group_seconds(members, d),
                         p.facts[members[0]] is None) for members, d in plan)
    return MergeResult(groups, compute + transfer, compute, transfer, exact, orders)


def merge(problem: MergeProblem, model: CostModel, *, options: MergeOptions = MergeOptions()) -> MergeResult:
    """Partitions the tasks into legal groups and places each on a device, minimizing the
    sum of group times and cross-device transfer times.

    Exact (over all convex partitions with an acyclic quotient and all placements) for
    up to `exact_max_tasks` tasks within `exact_budget` steps; otherwise a DP over a
    bounded set of topological orders, exact on chains.
    """
    p = _pricing(problem, model, options.max_group, options.group_cost)
    if p.n == 0:
        return MergeResult((), 0.0, 0.0, 0.0, True, 0)
    if p.n <= options.exact_max_tasks and count_downsets(p, options.exact_budget // 64) is not None:
        plan = exact_dp(p, options.exact_budget)
        if plan is not None:
            return _result(p, plan, exact=True, orders=0)
        log.info("merge: exact search over %d tasks exceeds %d steps; using the order DP", p.n,
                 options.exact_budget)
    plan, tried = _search_orders(p, options)
    if p.n <= options.solver_max_tasks and options.solver_time > 0:
        from planc.compiler.merging.solver import MergeSolverOptions, solve_merge

        better = solve_merge(p, plan, MergeSolverOptions(time=options.solver_time, seed=options.seed))
        if better is not None:
            plan = better
    return _result(p, plan, exact=False, orders=tried)


def _search_orders(p: Pricing, options: MergeOptions) -> tuple[Plan, int]:
    """The order DP on up to `orders` topological orders. Each order gets a first pass and
    up to `refine` more that price the transfers of non-adjacent edges at the best
    placement so far, alternating backwards (charging them at their producer) and
    forwards (at their consumer). At most work_budget / n DP passes in all, at least one."""
    runs = max(1, options.work_budget // p.n)
    orders = topo_orders(p, max(1, min(options.orders, runs)), options.seed)
    best: tuple[float, Plan] | None = None
    used = tried = 0
    for order in orders:
        if used >= runs:
            break
        tried += 1
        forward = segments(p, order)
        passes = 1 + options.refine if forward.has_far else 1
        backward = None
        stale = 0
        for k in range(passes):
            back = k % 2 == 1
            if back and backward is None:
                backward = segments(p, order, reverse=True)
            segs = backward if back else forward
            assert segs is not None
            plan = polish(p, order_dp(p, segs, None if best is None or k == 0 else _devices_of(p, best[1])))
            used += 1
            cost = sum(p.total(plan))
            improved = best is None or cost < best[0] * (1 - 1e-12)
            log.debug("merge: order %d pass %d (%s): %.6g s", tried, k, "backward" if back else "forward", cost)
            if improved:
                best = (cost, plan)
            stale = 0 if improved else stale + 1
            if used >= runs or stale >= 2:
                break
    assert best is not None
    return best[1], tried


def _devices_of(p: Pricing, plan: Plan) -> np.ndarray:
    where = np.zeros(p.n, dtype=np.int64)
    for members, d in plan:
        where[list(members)] = d
    return where


def exhaustive_merge(problem: MergeProblem, model: CostModel, *, options: MergeOptions = MergeOptions(),
                     limit: int = 12) -> MergeResult:
    """The reference search: every set partition of the tasks that is legal (convex groups,
    acyclic quotient, barriers alone, size bound) and every device assignment of its
    groups, skipping only partitions whose cheapest placement ignoring transfers already
    costs more than the best found. For at most `limit` tasks (8 for general DAGs keeps it
    under a second; chains stay small up to 12)."""
    p = _pricing(problem, model, options.max_group, options.group_cost)
    if p.n > limit:
        raise MergeError(f"exhaustive_merge handles at most {limit} tasks, found {p.n}")
    plan = exhaustive_plan(p)
    if plan is None:
        raise MergeError("no legal partition and placement")
    return _result(p, plan, exact=True, orders=0)


def _plan_of(p: Pricing, groups: Sequence[tuple[Sequence[str], str]]) -> tuple[Plan, list[str]]:
    idx = {n: i for i, n in enumerate(p.names)}
    errors: list[str] = []
    plan: Plan = []
    seen: dict[str, int] = {}
    for g, (members, device) in enumerate(groups):
        if device not in p.devices:
            errors.append(f"group {g}: unknown device '{device}'")
            continue
        unknown = [m for m in members if m not in idx]
        errors += [f"group {g}: unknown task '{m}'" for m in unknown]
        for m in members:
            if m in seen:
                errors.append(f"task '{m}' is in groups {seen[m]} and {g}")
            seen[m] = g
        if not members:
            errors.append(f"group {g} is empty")
        plan.append((tuple(sorted(idx[m] for m in members if m in idx)), p.devices.index(device)))
    errors += [f"task '{n}' is in no group" for n in p.names if n not in seen]
    return plan, errors


def legality_errors(problem: MergeProblem, model: CostModel, groups: Sequence[tuple[Sequence[str], str]], *,
                    options: MergeOptions = MergeOptions()) -> list[str]:
    """Every reason the partition and placement `groups` ((members, device) pairs) is
    illegal: a task missing or twice, a barrier in company or off its device, a device
    a member may not use, working memory over the device's capacity, a group over the
    size bound, a group that is not convex, a cyclic quotient graph. Empty when legal."""
    p = _pricing(problem, model, options.max_group, options.group_cost)
    plan, errors = _plan_of(p, groups)
    if errors:
        return errors
    for g, (members, d) in enumerate(plan):
        label = f"group {g} ({', '.join(p.names[m] for m in members)}) on {p.devices[d]}"
        if len(members) > 1 and any(p.facts[m] is None for m in members):
            errors.append(f"{label}: a barrier is never merged")
        elif p.group_seconds(members, d) == math.inf:
            errors.append(f"{label}: not allowed there, over the memory budget or over max_group")
        if not _convex(p, members):
            errors.append(f"{label}: not convex (a path leaves the group and re-enters it)")
    if not errors and quotient_order(p, [m for m, _ in plan]) is None:
        errors.append("the quotient graph of the groups has a cycle")
    return errors


def _convex(p: Pricing, members: tuple[int, ...]) -> bool:
    # Indices are topological: a path that re-enters the group only visits indices below its last member.
    inside, top = set(members), max(members)
    seen: set[int] = set()
    stack = [v for m in members for v, _ in p.succ[m] if v not in inside and v < top]
    while stack:
        w = stack.pop()
        if w in seen:
            continue
        seen.add(w)
        for v, _ in p.succ[w]:
            if v in inside:
                return False
            if v < top:
                stack.append(v)
    return True


def partition_cost(problem: MergeProblem, model: CostModel, groups: Sequence[tuple[Sequence[str], str]], *,
                   options: MergeOptions = MergeOptions()) -> float:
    """Total seconds of a legal partition and placement: group times plus cross-device transfers."""
    errors = legality_errors(problem, model, groups, options=options)
    if errors:
        raise MergeError("illegal partition: " + "; ".join(errors))
    p = _pricing(problem, model, options.max_group, options.group_cost)
    plan, _ = _plan_of(p, groups)
    return sum(p.total(plan))
