"""Prices for the merge search, its exact DP over down-sets, and the exhaustive reference."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
from planc.compiler.costs.model import ComputeFacts, CostModel, merge_facts

__all__ = ["INF", "GroupCostFn", "Plan", "Pricing", "count_downsets", "exact_dp", "exhaustive_plan", "quotient_order"]

INF = math.inf
# A partition with placement: (member indices in topological order, device index) per group.
Plan = list[tuple[tuple[int, ...], int]]
GroupCostFn = Callable[[tuple[str, ...], str], float]


@dataclass
class Pricing:
    """Tasks as plain arrays (indexed in a topological order), and the prices the DPs share.

    A barrier (facts None) runs alone on `barrier_dev` for `barrier_s` seconds. A compute
    group's working memory is the sum of its members' `memory` (no buffer reuse assumed).
    """

    model: CostModel
    names: list[str]
    devices: list[str]
    facts: list[ComputeFacts | None]
    memory: np.ndarray            # (n,) bytes
    allowed: np.ndarray           # (n, D) bool
    barrier_dev: list[int]        # -1 for compute tasks
    barrier_s: list[float]
    capacity: np.ndarray          # (D,) bytes
    edges: list[tuple[int, int, float]]
    max_group: int
    group_cost_fn: GroupCostFn | None = None
    succ: list[list[tuple[int, int]]] = field(init=False)   # (node, edge index)
    pred_mask: list[int] = field(init=False)
    _memo: dict[tuple[tuple[int, ...], int], float] = field(init=False, default_factory=dict)
    _edge_t: np.ndarray | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        n, _D = len(self.names), len(self.devices)
        self.succ = [[] for _ in range(n)]
        self.pred_mask = [0] * n
        for k, (u, v, _) in enumerate(self.edges):
            self.succ[u].append((v, k))
            self.pred_mask[v] |= 1 << u

    @property
    def edge_t(self) -> np.ndarray:
        """(E, D, D): seconds to move edge k's bytes from device a to device b."""
        if self._edge_t is None:
            D = len(self.devices)
            self._edge_t = np.array([[[self.model.transfer_time(w, self.devices[a], self.devices[b])
                                       for b in range(D)] for a in range(D)] for _, _, w in self.edges])
            self._edge_t = self._edge_t.reshape(len(self.edges), D, D)
        return self._edge_t

    @property
    def n(self) -> int:
        return len(self.names)

    def group_seconds(self, members: tuple[int, ...], d: int) -> float:
        """Time of one group on device d; inf where illegal (barrier with company, not allowed,
        over the memory budget or the size bound)."""
        key = (members, d)
        if key not in self._memo:
            self._memo[key] = self._price(members, d)
        return self._memo[key]

    def _price(self, members: tuple[int, ...], d: int) -> float:
        if len(members) == 1:
            m = members[0]
            f = self.facts[m]
            if f is None:
                return self.barrier_s[m] if self.barrier_dev[m] == d else INF
            if not self.allowed[m, d] or self.memory[m] > self.capacity[d]:
                return INF
            if self.group_cost_fn is None:
                return self.model.compute_time(f, self.devices[d])
        if len(members) > self.max_group or any(self.facts[m] is None or not self.allowed[m, d] for m in members):
            return INF
        if sum(float(self.memory[m]) for m in members) > self.capacity[d]:
            return INF
        if self.group_cost_fn is not None:
            return float(self.group_cost_fn(tuple(self.names[m] for m in members), self.devices[d]))
        inside = set(members)
        internal = sum(self.edges[k][2] for m in members for v, k in self.succ[m] if v in inside)
        facts = [f for f in (self.facts[m] for m in members) if f is not None]
        return self.model.compute_time(merge_facts(facts, 2.0 * internal), self.devices[d])

    def total(self, plan: Plan) -> tuple[float, float]:
        """(compute seconds, transfer seconds) of a partition with placement."""
        where = {}
        compute = 0.0
        for members, d in plan:
            compute += self.group_seconds(members, d)
            for m in members:
                where[m] = d
        transfer = sum(self.model.transfer_time(w, self.devices[where[u]], self.devices[where[v]])
                       for u, v, w in self.edges if where[u] != where[v])
        return compute, transfer


# ----------------------------------------------------------------- exact, over down-sets

def count_downsets(p: Pricing, cap: int) -> int | None:
    """How many down-sets (sets closed under predecessors) the graph has; None above `cap`."""
    seen, frontier = {0}, [0]
    while frontier:
        nxt = []
        for s in frontier:
            for v in range(p.n):
                if not s >> v & 1 and p.pred_mask[v] & ~s == 0 and (t := s | 1 << v) not in seen:
                    seen.add(t)
                    nxt.append(t)
                    if len(seen) > cap:
                        return None
        frontier = nxt
    return len(seen)


def _groups_from(p: Pricing, done: int, limit: int) -> list[int] | None:
    """Every group G that can follow the down-set `done` (done | G is again a down-set);
    None when there are more than `limit`."""
    n, out = p.n, []
    big = float(p.capacity.max())
    all_dev = (1 << len(p.devices)) - 1
    allow_bits = [sum(1 << d for d in range(len(p.devices)) if p.allowed[v, d]) for v in range(n)]

    def rec(g: int, excl: int, allow: int, mem: float, size: int) -> bool:
        taken = done | g
        v = next((v for v in range(n) if not (taken | excl) >> v & 1 and p.pred_mask[v] & ~taken == 0), -1)
        if v < 0:
            if g:
                out.append(g)
            return len(out) <= limit
        if p.facts[v] is None:
            if g == 0:
                out.append(1 << v)
        elif (size < p.max_group and allow & allow_bits[v] and mem + p.memory[v] <= big
              and not rec(g | 1 << v, excl, allow & allow_bits[v], mem + float(p.memory[v]), size + 1)):
            return False
        return rec(g, excl | 1 << v, allow, mem, size)

    return out if rec(0, 0, all_dev, 0.0, 0) else None


def _members(mask: int) -> tuple[int, ...]:
    return tuple(i for i in range(mask.bit_length()) if mask >> i & 1)


def exact_dp(p: Pricing, budget: int) -> Plan | None:
    """The optimum over every convex partition with an acyclic quotient and every placement.

    A state is a down-set S of finished tasks plus the devices of its frontier (tasks in S
    with a successor outside S); a step adds one group G with S | G again a down-set, which
    makes G convex and the quotient acyclic. None when more than `budget` steps are needed.
    """
    n, D = p.n, len(p.devices)
    succ_mask = [sum(1 << v for v, _ in p.succ[u]) for u in range(n)]

    def frontier(s: int) -> tuple[int, ...]:
        return tuple(u for u in _members(s) if succ_mask[u] & ~s)

    layers: list[dict[int, dict[tuple[int, ...], tuple[float, tuple]]]] = [{} for _ in range(n + 1)]
    layers[0][0] = {(): (0.0, ())}
    work = 0
    for size in range(n):
        for s, states in layers[size].items():
            front = frontier(s)
            groups = _groups_from(p, s, budget - work)
            if groups is None:
                return None
            for g in groups:
                t = s | g
                gm = _members(g)
                incoming = [(k, front.index(u)) for u in front for v, k in p.succ[u] if g >> v & 1]
                new_front = frontier(t)
                keep = [front.index(u) if not g >> u & 1 else -1 for u in new_front]
                work += D * (4 + len(states))  # pricing a group costs a few state updates
                if work > budget:
                    return None
                target = layers[t.bit_count()].setdefault(t, {})
                for d in range(D):
                    gs = p.group_seconds(gm, d)
                    if gs == INF:
                        continue
                    for assign, (cost, _) in states.items():
                        c = cost + gs + sum(float(p.edge_t[k, assign[i], d]) for k, i in incoming)
                        new = tuple(assign[i] if i >= 0 else d for i in keep)
                        if c < target.get(new, (INF,))[0]:
                            target[new] = (c, (s, assign, gm, d))
    final = layers[n].get((1 << n) - 1)
    if not final:
        return None
    plan: Plan = []
    back = min(final.values(), key=lambda cb: cb[0])[1]
    while back:
        s, assign, gm, d = back
        plan.append((gm, d))
        back = layers[s.bit_count()][s][assign][1]
    return plan[::-1]


# ------------------------------------------------------------ exhaustive, the reference

def quotient_order(p: Pricing, blocks: Sequence[Sequence[int]]) -> list[int] | None:
    """A topological order of the blocks, or None when the quotient graph has a cycle."""
    of = {m: b for b, members in enumerate(blocks) for m in members}
    succ: list[set[int]] = [set() for _ in blocks]
    indeg = [0] * len(blocks)
    for u, v, _ in p.edges:
        a, b = of[u], of[v]
        if a != b and b not in succ[a]:
            succ[a].add(b)
            indeg[b] += 1
    ready = [b for b in range(len(blocks)) if indeg[b] == 0]
    order: list[int] = []
    while ready:
        a = ready.pop()
        order.append(a)
        for b in sorted(succ[a]):
            indeg[b] -= 1
            if indeg[b] == 0:
                ready.append(b)
    return order if len(order) == len(blocks) else None


def _legal_partitions(p: Pricing) -> Iterator[list[list[int]]]:
    """Set partitions (tasks in index order, each joins a block or opens one) with every
    block convex, barriers alone and blocks within max_group; the quotient is checked later.
    A task joining block B breaks convexity iff some task outside B lies on a path from B
    to it; such a task precedes it in the index order, so the check is exact on the spot."""
    n = p.n
    anc = [0] * n
    for v in range(n):
        for u in range(v):
            if p.pred_mask[v] >> u & 1:
                anc[v] |= anc[u] | 1 << u
    desc = [0] * n
    for v in range(n):
        for u in range(n):
            if anc[u] >> v & 1:
                desc[v] |= 1 << u
    blocks: list[list[int]] = []
    masks: list[int] = []

    def rec(i: int) -> Iterator[list[list[int]]]:
        if i == n:
            yield [list(b) for b in blocks]
            return
        if p.facts[i] is not None:
            for k, b in enumerate(blocks):
                if len(b) >= p.max_group or p.facts[b[0]] is None:
                    continue
                reach = 0
                for m in b:
                    reach |= desc[m]
                if reach & anc[i] & ~masks[k]:
                    continue
                b.append(i)
                masks[k] |= 1 << i
                yield from rec(i + 1)
                b.pop()
                masks[k] &= ~(1 << i)
        blocks.append([i])
        masks.append(1 << i)
        yield from rec(i + 1)
        blocks.pop()
        masks.pop()

    return rec(0)


def exhaustive_plan(p: Pricing) -> Plan | None:
    """The cheapest legal partition and placement by enumeration (small graphs only)."""
    best: tuple[float, Plan] | None = None
    D = len(p.devices)
    for blocks in _legal_partitions(p):
        order = quotient_order(p, blocks)
        if order is None:
            continue
        costs = np.array([[p.group_seconds(tuple(b), d) for d in range(D)] for b in blocks])
        if best is not None and costs.min(axis=1).sum() >= best[0]:
            continue
        k = len(blocks)
        assign = np.stack(np.unravel_index(np.arange(D ** k), (D,) * k), axis=1)
        total = costs[np.arange(k), assign].sum(axis=1)
        of = {m: b for b, members in enumerate(blocks) for m in members}
        for e, (u, v, _) in enumerate(p.edges):
            if of[u] != of[v]:
                total = total + p.edge_t[e][assign[:, of[u]], assign[:, of[v]]]
        i = int(np.argmin(total))
        if math.isfinite(total[i]) and (best is None or total[i] < best[0]):
            best = (float(total[i]), [(tuple(blocks[b]), int(assign[i, b])) for b in order])
    return None if best is None else best[1]
