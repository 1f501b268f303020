"""Random task graphs the way the Standard Task Graph set (Kasahara lab) was generated (benchmarks and tests)."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import networkx as nx
import numpy as np
from planc.compiler.scheduling.platform import Platform

__all__ = ["StgParams", "Structure", "stg_dag"]


class Structure(enum.Enum):
    """How the edges are drawn (Tobita and Kasahara, J. Scheduling 5(5), 2002)."""

    SAMEPRED = "samepred"  # every task draws its number of predecessors among all earlier tasks
    SAMEPROB = "sameprob"  # every earlier task is a predecessor with the same probability
    LAYRPRED = "layrpred"  # tasks in layers; predecessors drawn from earlier layers
    LAYRPROB = "layrprob"  # tasks in layers; each earlier-layer task is a predecessor with a probability


@dataclass(frozen=True, slots=True)
class StgParams:
    """Parameters of one random graph.

    Attributes:
        v: number of tasks.
        structure: the edge structure.
        degree: mean number of predecessors of a task that has any.
        cost_min, cost_max: task costs are integers drawn uniformly from this range.
        processors: identical processors, no communication cost (named ``p1``, ``p2``, ...).
    """

    v: int
    structure: Structure = Structure.SAMEPRED
    degree: float = 3.0
    cost_min: int = 1
    cost_max: int = 10
    processors: int = 4

    def __post_init__(self) -> None:
        if self.v < 1 or self.processors < 1 or not 1 <= self.cost_min <= self.cost_max or self.degree <= 0:
            raise ValueError("need v >= 1, processors >= 1, 1 <= cost_min <= cost_max and degree > 0")


def _layers(rng: np.random.Generator, v: int) -> list[int]:
    """Layer of each task (non-decreasing): about sqrt(v) layers of random widths, none empty."""
    height = max(1, int(rng.integers(max(1, round(math.sqrt(v) / 2)), round(1.5 * math.sqrt(v)) + 1)))
    height = min(height, v)
    cuts = np.sort(rng.choice(np.arange(1, v), size=height - 1, replace=False)) if height > 1 else np.array([])
    layer = np.zeros(v, dtype=int)
    for c in cuts:
        layer[int(c):] += 1
    return [int(x) for x in layer]


def _edges(rng: np.random.Generator, params: StgParams) -> list[tuple[int, int]]:
    v, d, s = params.v, params.degree, params.structure
    layer = _layers(rng, v) if s in (Structure.LAYRPRED, Structure.LAYRPROB) else list(range(v))
    edges = []
    for j in range(v):
        earlier = [i for i in range(j) if layer[i] < layer[j]]
        if not earlier:
            continue
        if s in (Structure.SAMEPRED, Structure.LAYRPRED):
            k = min(len(earlier), int(rng.integers(1, max(2, round(2 * d)))))
            picks = [int(x) for x in rng.choice(earlier, size=k, replace=False)]
        else:
            prob = min(1.0, d / len(earlier)) if s is Structure.LAYRPROB else min(1.0, 2 * d / max(v - 1, 1))
            picks = [i for i in earlier if rng.random() < prob]
        edges += [(int(i), j) for i in picks]
    return edges


def stg_dag(params: StgParams, *, seed: int = 0) -> tuple[nx.DiGraph, Platform]:
    """A random DAG with integer costs on ``params.processors`` identical processors.

    Nodes ``0..v-1`` carry ``cost`` (the same on every processor); edges carry no data, so
    communication is free, as in the STG set. The same seed gives the same graph.
    """
    rng = np.random.default_rng(seed)
    names = tuple(f"p{k + 1}" for k in range(params.processors))
    g = nx.DiGraph()
    for i in range(params.v):
        w = float(rng.integers(params.cost_min, params.cost_max + 1))
        g.add_node(i, cost=dict.fromkeys(names, w))
    g.add_edges_from(_edges(rng, params))
    return g, Platform.uniform(names)
