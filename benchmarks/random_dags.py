"""Random task graphs as in Topcuoglu, Hariri and Wu 2002, section 5.1, seeded (benchmarks and tests;
tests/compiler/scheduling/conftest.py puts this folder on their path)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import networkx as nx
import numpy as np
from planc.compiler.scheduling.platform import Platform

__all__ = ["DagParams", "random_dag"]


@dataclass(frozen=True, slots=True)
class DagParams:
    """Parameters of the HEFT paper's random graph generator.

    Attributes:
        v: number of tasks.
        alpha: shape; the number of levels is uniform with mean ``sqrt(v) / alpha`` and each
            level's width uniform with mean ``alpha * sqrt(v)`` (small alpha: long, thin graphs).
        out_degree: each task gets between 1 and ``out_degree`` successors on later levels.
        ccr: communication to computation ratio: mean edge ``comm`` over mean task cost.
        beta: heterogeneity; task ``i`` costs ``w_ij ~ U[w_i (1 - beta/2), w_i (1 + beta/2)]``
            on device ``j``, with ``w_i ~ U[0, 2 * avg_cost]``.
        avg_cost: mean computation cost ``w_DAG`` (seconds).
        devices: number of devices (named ``p1``, ``p2``, ...).
    """

    v: int
    alpha: float = 1.0
    out_degree: int = 3
    ccr: float = 1.0
    beta: float = 0.5
    avg_cost: float = 50.0
    devices: int = 3

    def __post_init__(self) -> None:
        if self.v < 1 or self.devices < 1 or self.out_degree < 1:
            raise ValueError(f"v, devices and out_degree must be >= 1, got {self.v}, {self.devices}, "
                             f"{self.out_degree}")
        if not (self.alpha > 0 and self.ccr >= 0 and 0 <= self.beta <= 2 and self.avg_cost > 0):
            raise ValueError("need alpha > 0, ccr >= 0, 0 <= beta <= 2, avg_cost > 0")


def _uniform_int(rng: np.random.Generator, mean: float, hi: int) -> int:
    """An integer in [1, hi] drawn uniformly around ``mean`` (U[1, 2 mean - 1], clipped)."""
    top = max(1.0, 2.0 * mean - 1.0)
    return int(min(hi, max(1, round(rng.uniform(1.0, top)))))


def _levels(rng: np.random.Generator, v: int, alpha: float) -> list[list[int]]:
    height = _uniform_int(rng, math.sqrt(v) / alpha, v)
    widths = np.array([rng.uniform(1.0, max(1.0, 2.0 * alpha * math.sqrt(v) - 1.0)) for _ in range(height)])
    sizes = np.maximum(1, np.floor(widths / widths.sum() * v)).astype(int)
    while sizes.sum() > v:
        sizes[int(np.argmax(sizes))] -= 1
    for k in rng.integers(0, height, size=v - int(sizes.sum())):
        sizes[k] += 1
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    return [list(range(bounds[k], bounds[k + 1])) for k in range(height)]


def random_dag(params: DagParams, *, seed: int = 0) -> tuple[nx.DiGraph, Platform]:
    """A random layered DAG and a platform of ``params.devices`` devices, HEFT-paper style.

    Tasks are ``0..v-1``; nodes carry ``cost`` (device -> seconds), edges ``comm`` seconds,
    charged when the endpoints run on different devices. The same seed gives the same graph.
    """
    rng = np.random.default_rng(seed)
    v, p = params.v, params.devices
    levels = _levels(rng, v, params.alpha)
    names = tuple(f"p{k + 1}" for k in range(p))
    g = nx.DiGraph()
    mean = rng.uniform(0.0, 2.0 * params.avg_cost, size=v)
    spread = rng.uniform(1.0 - params.beta / 2, 1.0 + params.beta / 2, size=(v, p))
    for i in range(v):
        g.add_node(i, cost={names[d]: float(mean[i] * spread[i, d]) for d in range(p)})
    for k, lvl in enumerate(levels[:-1]):
        nxt_lo, nxt_hi = levels[k + 1][0], levels[k + 1][-1] + 1
        for t in lvl:
            deg = int(rng.integers(1, params.out_degree + 1))
            # Mostly the next level, sometimes further down, as in layered generators.
            picks = {int(rng.integers(nxt_lo, nxt_hi if rng.random() < 0.7 else v)) for _ in range(deg)}
            for s in picks:
                g.add_edge(t, s)
    for k, lvl in enumerate(levels[1:], start=1):
        for t in lvl:
            if g.in_degree(t) == 0:
                g.add_edge(int(rng.integers(levels[k - 1][0], levels[k - 1][-1] + 1)), t)
    for u, w in g.edges:
        g.edges[u, w]["comm"] = float(rng.uniform(0.0, 2.0 * params.ccr * params.avg_cost))
    return g, Platform.uniform(names)
