"""A task graph and a platform compiled into flat arrays that the schedulers work on."""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass

import networkx as nx
from planc.compiler.scheduling.platform import Platform

__all__ = ["Problem", "ScheduleInputError", "compile_problem"]


class ScheduleInputError(ValueError):
    """The task graph cannot be scheduled as given (cycle, bad cost, task that fits no device...)."""


@dataclass(frozen=True, slots=True, eq=False)
class Problem:
    """Tasks indexed ``0..n-1`` in a topological order, devices ``0..p-1`` in platform order.

    ``comm[e][a * p + b]`` is the time edge ``e`` takes from device ``a`` to ``b`` (0 when
    ``a == b``); ``preds[i]``/``succs[i]`` list ``(task, edge)`` pairs.
    """

    tasks: tuple[Hashable, ...]
    names: tuple[str, ...]
    cost: tuple[tuple[float, ...], ...]
    edges: tuple[tuple[int, int], ...]
    preds: tuple[tuple[tuple[int, int], ...], ...]
    succs: tuple[tuple[tuple[int, int], ...], ...]
    comm: tuple[tuple[float, ...], ...]
    comm_mean: tuple[float, ...]
    mem: tuple[float, ...]
    edge_bytes: tuple[float, ...]
    capacity: tuple[float, ...]
    watts: tuple[float, ...]
    idle_watts: tuple[float, ...]
    pue: float
    memory_limited: bool

    @property
    def n(self) -> int:
        return len(self.tasks)

    @property
    def p(self) -> int:
        return len(self.names)

    def feasible(self, i: int) -> list[int]:
        """Devices task ``i`` can run on."""
        return [d for d, c in enumerate(self.cost[i]) if c < math.inf]


def _number(value: object, what: str, *, allow_inf: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ScheduleInputError(f"{what} must be a number, got {value!r}")
    x = float(value)
    if math.isnan(x) or x < 0 or (x == math.inf and not allow_inf):
        raise ScheduleInputError(f"{what} must be >= 0{'' if allow_inf else ' and finite'}, got {value!r}")
    return x


def _costs(node: Hashable, attrs: Mapping[str, object], names: tuple[str, ...]) -> tuple[float, ...]:
    raw = attrs.get("cost")
    if not isinstance(raw, Mapping):
        raise ScheduleInputError(f"task {node!r}: 'cost' must be a mapping device -> seconds, got {raw!r}")
    unknown = [k for k in raw if k not in names]
    if unknown:
        raise ScheduleInputError(f"task {node!r}: cost names unknown device {unknown[0]!r}; "
                                 f"expected one of: {', '.join(names)}")
    return tuple(_number(raw.get(d, math.inf), f"task {node!r}: cost on {d!r}", allow_inf=True) for d in names)


def _topological(graph: nx.DiGraph) -> list[Hashable]:
    try:
        return list(nx.topological_sort(graph))
    except nx.NetworkXUnfeasible:
        edges = nx.find_cycle(graph)
        cycle = " -> ".join([repr(u) for u, _ in edges] + [repr(edges[0][0])])
        raise ScheduleInputError(f"the task graph has a cycle: {cycle}") from None


def _memory_can_bind(cost: list[tuple[float, ...]], mem: list[float], nbytes: list[float],
                     succs: list[list[tuple[int, int]]], capacity: tuple[float, ...]) -> bool:
    """Whether some device could ever hold more than its capacity: not if everything that
    could run there, with every output, fits at once (then schedulers skip the bookkeeping)."""
    need = [m + max((nbytes[e] for _, e in succs[i]), default=0.0) for i, m in enumerate(mem)]
    return any(sum(x for i, x in enumerate(need) if cost[i][d] < math.inf) > cap
               for d, cap in enumerate(capacity))


def compile_problem(graph: nx.DiGraph, platform: Platform) -> Problem:
    """Check ``graph`` against ``platform`` and flatten both; raises ScheduleInputError."""
    if not isinstance(graph, nx.DiGraph) or graph.is_multigraph():
        raise ScheduleInputError(f"expected a networkx.DiGraph, got {type(graph).__name__}")
    if not isinstance(platform, Platform):
        raise ScheduleInputError(f"expected a Platform, got {type(platform).__name__}")
    names = platform.names
    order = _topological(graph)
    index = {t: i for i, t in enumerate(order)}
    p = len(names)
    cost, mem = [], []
    for t in order:
        attrs = graph.nodes[t]
        row = _costs(t, attrs, names)
        m = _number(attrs.get("memory", 0.0), f"task {t!r}: memory")
        row = tuple(c if m <= platform.devices[d].memory else math.inf for d, c in enumerate(row))
        if all(c == math.inf for c in row):
            why = " (its memory fits no device)" if any(c < math.inf for c in _costs(t, attrs, names)) else ""
            raise ScheduleInputError(f"task {t!r} can run on no device{why}")
        cost.append(row)
        mem.append(m)
    edges: list[tuple[int, int]] = []
    comm: list[tuple[float, ...]] = []
    comm_mean: list[float] = []
    nbytes: list[float] = []
    preds: list[list[tuple[int, int]]] = [[] for _ in order]
    succs: list[list[tuple[int, int]]] = [[] for _ in order]
    for u, v, attrs in sorted(graph.edges(data=True), key=lambda e: (index[e[0]], index[e[1]])):
        what = f"edge {u!r} -> {v!r}"
        b = _number(attrs.get("bytes", 0.0), f"{what}: bytes")
        if "comm" in attrs:
            c = _number(attrs["comm"], f"{what}: comm")
            row = tuple(0.0 if a == z else c for a in range(p) for z in range(p))
        else:
            row = tuple(platform.comm_time(b, names[a], names[z]) for a in range(p) for z in range(p))
        if any(x == math.inf for x in row):
            raise ScheduleInputError(f"{what}: transfer time is infinite")
        e = len(edges)
        edges.append((index[u], index[v]))
        comm.append(row)
        comm_mean.append(sum(row) / (p * (p - 1)) if p > 1 else 0.0)
        nbytes.append(b)
        preds[index[v]].append((index[u], e))
        succs[index[u]].append((index[v], e))
    capacity = tuple(d.memory for d in platform.devices)
    limited = _memory_can_bind(cost, mem, nbytes, succs, capacity)
    return Problem(
        tasks=tuple(order), names=names, cost=tuple(cost), edges=tuple(edges),
        preds=tuple(tuple(x) for x in preds), succs=tuple(tuple(x) for x in succs),
        comm=tuple(comm), comm_mean=tuple(comm_mean), mem=tuple(mem), edge_bytes=tuple(nbytes),
        capacity=capacity, watts=tuple(d.watts for d in platform.devices),
        idle_watts=tuple(d.idle_watts for d in platform.devices), pue=float(platform.pue),
        memory_limited=limited,
    )
