"""Scientific-workflow task graphs from the WfCommons recipes, on a heterogeneous deployment.

Used by benchmarks/schedule.py. Needs the `bench` extra (`pip install -e '.[bench]'`: wfcommons).
The recipes (Montage, Epigenomics, 1000Genome, Seismology, SRASearch, BLAST) grow graphs from
real execution traces; runtimes are seconds measured on the traced machine, edges carry the
bytes of the files the consumer reads from the producer.

The deployment (labelled "cpu-arm-gpu" in the tables) is ours, not WfCommons': two x86 hosts
(speed factor 1), two ARM boards (1.5-3x slower, by task type), one GPU on host 0 (0.1-2x
the x86 time, by task type: some programs gain 10x, some lose). Links: x86 hosts over
10 GbE (1.25 GB/s, 50 us), host 0 <-> GPU over PCIe 4 x16 (25 GB/s, 10 us), the GPU to
anything else through host 0 (PCIe + 10 GbE: 1.1 GB/s, 60 us), the ARM boards over 1 GbE
(125 MB/s, 100 us). Factors per task type are drawn from a fixed seed.
"""

from __future__ import annotations

import random
import re
import zlib

import networkx as nx
import numpy as np
from planc.compiler.scheduling import Device, Link, Platform

__all__ = ["RECIPES", "deployment", "workflow"]

RECIPES = ("montage", "epigenomics", "1000genome", "seismology", "srasearch", "blast")


def _recipe(name: str):
    from wfcommons.wfchef.recipes import (
        BlastRecipe,
        EpigenomicsRecipe,
        GenomeRecipe,
        MontageRecipe,
        SeismologyRecipe,
        SrasearchRecipe,
    )

    return {"montage": MontageRecipe, "epigenomics": EpigenomicsRecipe, "1000genome": GenomeRecipe,
            "seismology": SeismologyRecipe, "srasearch": SrasearchRecipe, "blast": BlastRecipe}[name]


DEVICES = ("x86a", "x86b", "arm1", "arm2", "gpu")
GBE10, GBE1 = Link(50e-6, 1.25e9), Link(100e-6, 125e6)
PCIE, VIA_HOST = Link(10e-6, 25e9), Link(60e-6, 1.1e9)


def deployment() -> Platform:
    links = {}
    for a in DEVICES:
        for b in DEVICES:
            if a == b:
                continue
            pair = {a, b}
            if pair == {"x86a", "gpu"}:
                links[(a, b)] = PCIE
            elif "gpu" in pair:
                links[(a, b)] = VIA_HOST if not pair & {"arm1", "arm2"} else GBE1
            elif pair & {"arm1", "arm2"}:
                links[(a, b)] = GBE1
            else:
                links[(a, b)] = GBE10
    return Platform(tuple(Device(d) for d in DEVICES), links=links)


def _factors(kind: str) -> dict[str, float]:
    rng = random.Random(zlib.crc32(kind.encode()))
    arm = rng.uniform(1.5, 3.0)
    return {"x86a": 1.0, "x86b": 1.0, "arm1": arm, "arm2": arm, "gpu": 10 ** rng.uniform(-1.0, 0.3)}


def _build(recipe: str, tasks: int, seed: int):
    from wfcommons import WorkflowGenerator

    random.seed(seed)
    np.random.seed(seed)
    return WorkflowGenerator(_recipe(recipe).from_num_tasks(tasks)).build_workflow()


def workflow(recipe: str, tasks: int, seed: int) -> nx.DiGraph:
    """A workflow of about ``tasks`` tasks, seeded; below the recipe's smallest base graph,
    that base graph's size (the recipes cannot shrink a trace)."""
    try:
        wf = _build(recipe, tasks, seed)
    except ValueError as e:
        found = re.search(r"base graph with (\d+) nodes", str(e))
        if not found:
            raise
        wf = _build(recipe, int(found.group(1)), seed)
    g = nx.DiGraph()
    names = {t: k for k, t in enumerate(sorted(wf.tasks))}
    for name, k in names.items():
        t = wf.tasks[name]
        kind = name.rsplit("_", 1)[0]
        g.add_node(k, cost={d: max(float(t.runtime), 1e-3) * f for d, f in _factors(kind).items()}, kind=kind)
    for u, v in wf.edges:
        made = {f.file_id: f.size for f in wf.tasks[u].output_files}
        nbytes = sum(float(f.size) for f in wf.tasks[v].input_files if f.file_id in made)
        g.add_edge(names[u], names[v], bytes=nbytes)
    return g
