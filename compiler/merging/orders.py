"""The merge search for large graphs: a vectorized segment DP over a few topological orders."""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from planc.compiler.costs.model import DTYPES, BatchCostModel
from planc.compiler.merging.dp import INF, Plan, Pricing

__all__ = ["Segments", "order_dp", "segments", "topo_orders"]


def topo_orders(p: Pricing, count: int, seed: int) -> list[list[int]]:
    """Up to `count` distinct topological orders: depth-first from the sources (a task's
    successors stay close to it), depth-first from the sinks, reversed (its predecessors
    stay close), each with two tie-breaks, then the index order and seeded random ones."""
    n = p.n
    succ = [[v for v, _ in p.succ[u]] for u in range(n)]
    pred: list[list[int]] = [[] for _ in range(n)]
    for u, v, _ in p.edges:
        pred[v].append(u)

    def kahn(out_of: list[list[int]], into: list[list[int]], pick: str, rng: random.Random) -> list[int]:
        deg = [len(x) for x in into]
        ready = [v for v in range(n) if deg[v] == 0]
        order: list[int] = []
        if pick == "index":
            heapq.heapify(ready)
        else:
            ready.sort(reverse=(pick == "low"))
        while ready:
            if pick == "index":
                u = heapq.heappop(ready)
            else:
                u = ready.pop(rng.randrange(len(ready)) if pick == "random" else -1)
            order.append(u)
            new = []
            for v in out_of[u]:
                deg[v] -= 1
                if deg[v] == 0:
                    new.append(v)
            if pick == "index":
                for v in new:
                    heapq.heappush(ready, v)
            else:
                ready.extend(sorted(new, reverse=(pick == "low")))
        return order

    rng = random.Random(seed)
    makers = [
        lambda: kahn(succ, pred, "low", rng), lambda: kahn(pred, succ, "high", rng)[::-1],
        lambda: kahn(succ, pred, "high", rng), lambda: kahn(pred, succ, "low", rng)[::-1],
        lambda: kahn(succ, pred, "index", rng),
    ]
    orders: list[list[int]] = []
    for tries in range(4 * count + len(makers)):
        if len(orders) >= count:
            break
        order = makers[tries]() if tries < len(makers) else kahn(succ, pred, "random", rng)
        if order not in orders:
            orders.append(order)
        if tries == 0 and all(b in succ[a] for a, b in itertools.pairwise(order)):
            break  # consecutive tasks all linked: the only topological order
    return orders


@dataclass
class Segments:
    """One order's segments, priced: cell (e, c) is the segment of the c + 1 tasks ending
    at position e. With `reverse` the order runs backwards and edges point backwards, so
    a transfer is charged at its producer instead of its consumer."""

    order: list[int]               # the DP's order (reversed when `reverse`)
    reverse: bool
    G: np.ndarray                  # (D, n, L) group seconds, inf where illegal
    in_cnt: np.ndarray             # (n, L) edges into the segment from before it
    in_bytes: np.ndarray
    near: tuple[np.ndarray, np.ndarray, np.ndarray]   # (edge, e, c): edge from s - 1 into the segment
    internal: tuple[np.ndarray, np.ndarray, np.ndarray]  # (edge, e, c) difference points along c
    src: np.ndarray                # per edge, the DP-orientation source task
    dst: np.ndarray                # per edge, the DP-orientation destination task
    src_pos: np.ndarray            # their positions in `order`
    dst_pos: np.ndarray
    weight: np.ndarray             # per edge, bytes
    alpha: np.ndarray              # (D, D): seconds = alpha[from, to] + beta[from, to] * bytes
    beta: np.ndarray
    has_far: bool                  # some edge skips a position, so `ref` passes can matter

    @property
    def shape(self) -> tuple[int, int]:
        return self.in_cnt.shape


def _points(a: np.ndarray, first: np.ndarray, last: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every edge k and every e in [first[k], last[k]]: (k, e, e - a[k])."""
    counts = np.maximum(last - first + 1, 0)
    edge = np.repeat(np.arange(len(a)), counts)
    offset = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    e = first[edge] + offset
    return edge, e, e - a[edge]


def _accumulate(shape: tuple[int, int], rows: np.ndarray, cols: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weight sums per cell (np.add.at, but bincount-fast)."""
    flat = np.bincount(rows * shape[1] + cols, weights=weights, minlength=shape[0] * shape[1])
    return flat.reshape(shape)


def _affine(p: Pricing) -> tuple[np.ndarray, np.ndarray]:
    """transfer_time(n, a, b) ~ alpha[a, b] + beta[a, b] * n, sampled from the model."""
    D = len(p.devices)
    alpha, beta = np.zeros((D, D)), np.zeros((D, D))
    for a in range(D):
        for b in range(D):
            t0 = p.model.transfer_time(0.0, p.devices[a], p.devices[b])
            alpha[a, b] = t0
            beta[a, b] = (p.model.transfer_time(1e9, p.devices[a], p.devices[b]) - t0) / 1e9
    return alpha, beta


def segments(p: Pricing, order: Sequence[int], *, reverse: bool = False) -> Segments:
    """Prices every segment of `order` (at most max_group long) on every device."""
    n, L = p.n, max(1, min(p.max_group, p.n))
    dp_order = list(order)[::-1] if reverse else list(order)
    pos = np.empty(n, dtype=np.int64)
    pos[np.asarray(dp_order)] = np.arange(n)
    ends = np.arange(n)[:, None]
    starts = ends - np.arange(L)[None, :]
    s_idx = np.maximum(starts, 0)

    def seg(values: np.ndarray) -> np.ndarray:
        pre = np.concatenate([np.zeros((1,) + values.shape[1:]), np.cumsum(values, axis=0)])
        return pre[ends + 1] - pre[s_idx]

    ends_uv = [(v, u) if reverse else (u, v) for u, v, _ in p.edges]
    src = np.array([u for u, _ in ends_uv], dtype=np.int64)
    dst = np.array([v for _, v in ends_uv], dtype=np.int64)
    eu, ev = pos[src], pos[dst]
    ew = np.array([w for _, _, w in p.edges], dtype=float)
    # Internal edge a -> b: segment (e, c) holds it when e >= b and c >= e - a (c < L).
    short = np.nonzero(ev - eu < L)[0]
    k, e, c = _points(eu[short], ev[short], np.minimum(n - 1, eu[short] + L - 1))
    internal = (short[k], e, c)

    def inner(weight: np.ndarray) -> np.ndarray:
        return np.cumsum(_accumulate((n, L), internal[1], internal[2], weight[internal[0]]), axis=1)

    int_bytes = inner(ew)
    in_cnt = seg(np.bincount(ev, minlength=n).astype(float)) - inner(np.ones(len(ew)))
    in_bytes = seg(np.bincount(ev, weights=ew, minlength=n)) - int_bytes
    # Near edge a -> b (from s - 1 = a): the cell (e, e - a - 1) for every e in [b, a + L].
    k2, e2, c2 = _points(eu, ev, np.minimum(n - 1, eu + L))
    G = _group_times(p, dp_order, seg, starts, int_bytes)
    alpha, beta = _affine(p)
    if reverse:
        alpha, beta = alpha.T.copy(), beta.T.copy()
    return Segments(dp_order, reverse, G, in_cnt, in_bytes, (k2, e2, c2 - 1), internal, src, dst, eu, ev, ew,
                    alpha, beta, bool(np.any(ev - eu >= 2)))


def _group_times(p: Pricing, order: list[int], seg: Callable[[np.ndarray], np.ndarray],
                 starts: np.ndarray, int_bytes: np.ndarray) -> np.ndarray:
    """(D, n, L) seconds of each segment on each device; inf where illegal."""
    n, D, L = p.n, len(p.devices), starts.shape[1]
    o = np.asarray(order)
    present = {dt for f in p.facts if f is not None for dt, x in f.by_dtype() if x}
    dtypes = [dt for dt in DTYPES if dt in present] or ["f32"]
    flops, traffic = np.zeros((n, len(dtypes))), np.zeros(n)
    for i, v in enumerate(o):
        f = p.facts[v]
        if f is not None:
            for dt, x in f.by_dtype():
                if x:
                    flops[i, dtypes.index(dt)] += x
            traffic[i] = f.bytes_accessed
    width = np.arange(L)[None, :] + 1
    barrier = np.array([p.facts[v] is None for v in o], dtype=float)
    ok = (starts >= 0) & (width <= p.max_group) & ((seg(barrier) == 0) | (width == 1))
    mem, allowed = seg(p.memory[o]), seg(p.allowed[o].astype(float))
    fast = p.group_cost_fn is None and isinstance(p.model, BatchCostModel)
    if fast:
        per, nbytes = seg(flops), np.maximum(0.0, seg(traffic) - 2.0 * int_bytes)
    G = np.full((D, n, L), INF)
    for d in range(D):
        okd = ok & (mem <= p.capacity[d]) & (allowed[:, :, d] == width)
        okd[:, 0] = False  # single tasks below keep their own facts (dispatches, measured keys)
        if fast:
            assert isinstance(p.model, BatchCostModel)
            G[d][okd] = p.model.compute_times(per[okd], nbytes[okd], dtypes, p.devices[d])
        else:
            for e, c in zip(*np.nonzero(okd)):
                G[d, e, c] = p.group_seconds(tuple(sorted(int(v) for v in o[starts[e, c]:e + 1])), d)
        G[d, :, 0] = [p.group_seconds((int(v),), d) for v in o]
    return G


def order_dp(p: Pricing, segs: Segments, ref: np.ndarray | None) -> Plan:
    """dp[i][d] = min over j, d' of dp[j][d'] + cost(order[j:i] on d) + transfers into it.

    Transfers from the task just before the group are priced with d' exactly, so chains
    are exact; those from earlier tasks with `ref` (a device per task from an earlier
    pass), or with d' when `ref` is None. Returns groups in a topological order.
    """
    (n, L), D = segs.shape, len(p.devices)
    if ref is None:
        c_cnt, c_bytes, far = segs.in_cnt, segs.in_bytes, np.zeros((D, n, L))
    else:
        nk, ne, nc = segs.near
        c_cnt = _accumulate((n, L), ne, nc, np.ones(len(ne)))
        c_bytes = _accumulate((n, L), ne, nc, segs.weight[nk])
        far = _far(segs, ref, D)
    total = segs.G + far
    dp = np.full((n + 1, D), INF)
    dp[0] = 0.0
    back = np.zeros((n + 1, D, 2), dtype=np.int64)
    aT, bT = segs.alpha.T[:, :, None], segs.beta.T[:, :, None]   # [d, d', 1]
    rows = np.arange(D)
    for e in range(n):
        lmax = min(L, e + 1)
        prev = dp[e::-1][:lmax].T                                 # [d', c]: dp[e - c]
        cand = prev[None] + total[:, e, None, :lmax] + aT * c_cnt[e, :lmax] + bT * c_bytes[e, :lmax]
        flat = cand.reshape(D, -1)
        best = np.argmin(flat, axis=1)
        dp[e + 1] = flat[rows, best]
        back[e + 1, :, 0] = best // lmax
        back[e + 1, :, 1] = best % lmax
    plan: Plan = []
    i, d = n, int(np.argmin(dp[n]))
    while i > 0:
        dprev, c = int(back[i, d, 0]), int(back[i, d, 1])
        plan.append((tuple(sorted(segs.order[i - c - 1:i])), d))
        i, d = i - c - 1, int(dprev)
    return plan if segs.reverse else plan[::-1]


def _far(segs: Segments, ref: np.ndarray, D: int) -> np.ndarray:
    """Per device d and segment, the linearized seconds of the edges the exact terms miss.

    An edge into the segment from before s - 1 is priced from its source's device in
    `ref`. An edge out of the segment from a task before its last one (so certainly not
    priced exactly by the next segment) adds t(d, ref dst) - t(ref src, ref dst): the
    sum is exact whenever at most one end leaves its `ref` device.
    """
    n, L = segs.shape
    far = np.zeros((D, n, L))
    if not len(segs.weight):
        return far
    rs, rd = ref[segs.src], ref[segs.dst]
    ends = np.arange(n)[:, None]
    s_idx = np.maximum(ends - np.arange(L)[None, :], 0)
    ik, ie, ic = segs.internal
    nk, ne, nc = segs.near
    base = segs.alpha[rs, rd] + segs.beta[rs, rd] * segs.weight

    def prefix(pos: np.ndarray, w: np.ndarray) -> np.ndarray:
        return np.concatenate([[0.0], np.cumsum(np.bincount(pos, weights=w, minlength=n))])

    def inner(w: np.ndarray) -> np.ndarray:
        return np.cumsum(_accumulate((n, L), ie, ic, w[ik]), axis=1)

    for d in range(D):
        w_in = segs.alpha[rs, d] + segs.beta[rs, d] * segs.weight
        pre = prefix(segs.dst_pos, w_in)
        far[d] = pre[ends + 1] - pre[s_idx] - inner(w_in) - _accumulate((n, L), ne, nc, w_in[nk])
        w_out = segs.alpha[d, rd] + segs.beta[d, rd] * segs.weight - base
        pre = prefix(segs.src_pos, w_out)
        far[d] += pre[ends] - pre[s_idx] - inner(w_out)
    return far


def polish(p: Pricing, plan: Plan, rounds: int = 3) -> Plan:
    """Moves whole groups to the device that lowers the exact cost (group time plus the
    transfers of its crossing edges) until no move helps or `rounds` sweeps are done."""
    plan = list(plan)
    where = np.zeros(p.n, dtype=np.int64)
    group_of = np.zeros(p.n, dtype=np.int64)
    for g, (members, d) in enumerate(plan):
        where[list(members)] = d
        group_of[list(members)] = g
    crossing: list[list[tuple[int, int, float]]] = [[] for _ in plan]
    for u, v, w in p.edges:
        if group_of[u] != group_of[v]:
            crossing[group_of[u]].append((u, v, w))
            crossing[group_of[v]].append((u, v, w))
    names = p.devices

    def local(g: int, d: int) -> float:
        members = plan[g][0]
        cost = p.group_seconds(members, d)
        for u, v, w in crossing[g]:
            a = d if group_of[u] == g else int(where[u])
            b = d if group_of[v] == g else int(where[v])
            if a != b:
                cost += p.model.transfer_time(w, names[a], names[b])
        return cost

    for _ in range(rounds):
        moved = False
        for g, (members, d) in enumerate(plan):
            now = local(g, d)
            best, best_d = now, d
            for d2 in range(len(names)):
                if d2 != d and (c := local(g, d2)) < best * (1 - 1e-12):
                    best, best_d = c, d2
            if best_d != d:
                plan[g] = (members, best_d)
                where[list(members)] = best_d
                moved = True
        if not moved:
            break
    return plan
