"""The Kasahara Standard Task Graph set: read `.stg` files and their published optima.

The set (Tobita and Kasahara, J. Scheduling 5(5), 2002; http://www.kasahara.cs.waseda.ac.jp/
schedule/) is not shipped here: point ``--stg-dir`` at a folder holding ``50/randNNNN.stg``,
``100/randNNNN.stg`` and ``Optimal_values/Case{50,100}_{2,4,8,16}_OPT.csv`` (lines
``100/rand0000.stg,2,291`` for a proven optimum, ``100/rand0012.stg,2,296,312`` for a
lower bound and the best known upper bound where none was proven). A copy with that layout
is the CC0 repository github.com/thelonesailor/MSP.

A `.stg` file: the task count n, then n + 2 lines ``id cost npred pred...`` (task 0 and
n + 1 are zero-cost dummies, entry and exit), then ``#`` comments. Costs are integers,
processors identical, communication free.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
from planc.compiler.scheduling import Platform

__all__ = ["Published", "processors", "published", "read_stg"]


@dataclass(frozen=True, slots=True)
class Published:
    """The published result for one graph on one processor count: the best lower bound and
    the best known makespan (equal when optimal)."""

    lower: int
    upper: int

    @property
    def optimal(self) -> bool:
        return self.lower == self.upper


def read_stg(path: Path) -> nx.DiGraph:
    """The graph of a `.stg` file without its two dummy tasks; node ``k`` is task ``k``,
    attribute ``cost`` a dict filled in by ``processors``; ``work`` the integer cost."""
    lines = [ln.split() for ln in path.read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    n = int(lines[0][0])
    g = nx.DiGraph()
    for row in lines[1:n + 3]:
        k, cost, npred = int(row[0]), int(row[1]), int(row[2])
        preds = [int(x) for x in row[3:3 + npred]]
        if 1 <= k <= n:
            g.add_node(k, work=cost)
            g.add_edges_from((u, k) for u in preds if 1 <= u <= n)
    if g.number_of_nodes() != n:
        raise ValueError(f"{path}: expected {n} tasks, read {g.number_of_nodes()}")
    return g


def processors(graph: nx.DiGraph, p: int) -> tuple[nx.DiGraph, Platform]:
    """``graph`` on ``p`` identical processors ``p1..pp`` (a copy; costs the same everywhere)."""
    names = tuple(f"p{k + 1}" for k in range(p))
    g = graph.copy()
    for k in g.nodes:
        g.nodes[k]["cost"] = dict.fromkeys(names, float(g.nodes[k]["work"]))
    return g, Platform.uniform(names)


def published(root: Path, v: int, p: int) -> dict[str, Published]:
    """Graph file name (``rand0000.stg``) -> published result for ``v`` tasks on ``p`` processors."""
    out = {}
    with open(root / "Optimal_values" / f"Case{v}_{p}_OPT.csv", newline="") as f:
        for row in csv.reader(f):
            if not row:
                continue
            name, values = Path(row[0]).name, [int(x) for x in row[2:]]
            out[name] = Published(values[0], values[-1])
    return out
