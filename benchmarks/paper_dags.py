"""Published example graphs, in the HEFT-paper input style (edges carry ``comm`` seconds), for benchmarks
and tests (tests/compiler/scheduling/conftest.py puts this folder on their path)."""

from __future__ import annotations

from collections.abc import Mapping

import networkx as nx
from planc.compiler.scheduling.platform import Platform

__all__ = ["arabnejad_2014", "topcuoglu_2002"]


def _build(costs: Mapping[int, tuple[int, ...]], comm: Mapping[tuple[int, int], int]) -> tuple[nx.DiGraph, Platform]:
    names = tuple(f"p{k + 1}" for k in range(len(next(iter(costs.values())))))
    g = nx.DiGraph()
    for t, row in costs.items():
        g.add_node(t, cost=dict(zip(names, map(float, row))))
    for (u, v), c in comm.items():
        g.add_edge(u, v, comm=float(c))
    return g, Platform.uniform(names)


def topcuoglu_2002() -> tuple[nx.DiGraph, Platform]:
    """The 10-task, 3-processor sample DAG of Topcuoglu, Hariri and Wu 2002 (Fig. 2).

    HEFT's published schedule length on it is 80.
    """
    costs = {1: (14, 16, 9), 2: (13, 19, 18), 3: (11, 13, 19), 4: (13, 8, 17), 5: (12, 13, 10),
             6: (13, 16, 9), 7: (7, 15, 11), 8: (5, 11, 14), 9: (18, 12, 20), 10: (21, 7, 16)}
    comm = {(1, 2): 18, (1, 3): 12, (1, 4): 9, (1, 5): 11, (1, 6): 14, (2, 8): 19, (2, 9): 16,
            (3, 7): 23, (4, 8): 27, (4, 9): 23, (5, 9): 13, (6, 8): 15, (7, 10): 17, (8, 10): 11,
            (9, 10): 13}
    return _build(costs, comm)


def arabnejad_2014() -> tuple[nx.DiGraph, Platform]:
    """The 10-task, 3-processor sample DAG of Arabnejad and Barbosa 2014 (PEFT, Fig. 2).

    Its optimistic cost table row for task 1 is (64, 68, 86) and PEFT's schedule length is
    122: the paper's example as reproduced by the PEFT implementation
    github.com/mackncheesiest/peft (test/test_peft.py, whose costs and edges these are).
    """
    costs = {1: (22, 21, 36), 2: (22, 18, 18), 3: (32, 27, 43), 4: (7, 10, 4), 5: (29, 27, 35),
             6: (26, 17, 24), 7: (14, 25, 30), 8: (29, 23, 36), 9: (15, 21, 8), 10: (13, 16, 33)}
    comm = {(1, 2): 17, (1, 3): 31, (1, 4): 29, (1, 5): 13, (1, 6): 7, (2, 8): 3, (2, 9): 30,
            (3, 7): 16, (4, 8): 11, (4, 9): 7, (5, 9): 57, (6, 8): 5, (7, 10): 9, (8, 10): 42,
            (9, 10): 7}
    return _build(costs, comm)
