"""The CP-SAT scheduler: optimal on small identical-processor graphs, never worse than its warm
start, valid under transfers and memory, deterministic; lower bounds; STG-style graphs."""

import math

import networkx as nx
import pytest
from planc.compiler.scheduling import (
    Device,
    Link,
    Method,
    Platform,
    schedule,
    validate,
)
from planc.compiler.scheduling.bounds import Bounds, lower_bounds
from planc.compiler.scheduling.cpsat import SolverOptions, solve
from planc.compiler.scheduling.heft import heft
from planc.compiler.scheduling.problem import compile_problem
from planc.compiler.scheduling.schedule import Objective
from planc.compiler.scheduling.units import assign_pooled, units_of
from random_dags import DagParams, random_dag
from stg_dags import StgParams, Structure, stg_dag


def test_stg_generator_is_seeded_and_integer() -> None:
    for structure in Structure:
        g, platform = stg_dag(StgParams(40, structure, processors=3), seed=5)
        h, _ = stg_dag(StgParams(40, structure, processors=3), seed=5)
        assert nx.is_directed_acyclic_graph(g) and g.number_of_nodes() == 40
        assert sorted(g.edges) == sorted(h.edges)
        costs = {c for _, a in g.nodes(data=True) for c in a["cost"].values()}
        assert costs <= {float(k) for k in range(1, 11)} and len(platform.devices) == 3
    with pytest.raises(ValueError, match="processors"):
        StgParams(10, processors=0)


def test_identical_processors_pool_into_one_unit() -> None:
    g, platform = stg_dag(StgParams(20, processors=4), seed=1)
    prob = compile_problem(g, platform)
    assert units_of(prob, pool=True) == [[0, 1, 2, 3]]
    assert units_of(prob, pool=False) == [[0], [1], [2], [3]]
    g2, platform2 = random_dag(DagParams(20, devices=3), seed=1)  # heterogeneous: no pooling
    assert units_of(compile_problem(g2, platform2), pool=True) == [[0], [1], [2]]
    # three intervals, at most two at once: two devices suffice
    got = assign_pooled([7, 9], [0, 1, 2], [0, 1, 5], [4, 6, 8])
    assert got[0] != got[1] and set(got.values()) <= {7, 9}


def test_solver_proves_stg_graphs_optimal_and_beats_heft() -> None:
    # 50 tasks, 4 processors: HEFT 77, our search 77; the optimum (proven) is 76.
    g, platform = stg_dag(StgParams(50, Structure.SAMEPRED, processors=4), seed=54)
    s = schedule(g, platform, method="cpsat", opt_time=2.0)
    validate(g, platform, s)
    h = schedule(g, platform, method="heft")
    assert s.makespan == 76.0 < h.makespan
    assert s.method is Method.CPSAT and s.bounds is not None
    assert s.bounds.proven and s.bounds.solver == 76.0 and s.gap == 0.0


def test_solver_is_deterministic_and_never_worse_than_its_warm_start() -> None:
    g, platform = random_dag(DagParams(30, ccr=2.0, devices=3), seed=1)
    ours = schedule(g, platform, method="ours")
    a = schedule(g, platform, method="cpsat", opt_time=0.3)
    b = schedule(g, platform, method="cpsat", opt_time=0.3)
    assert a == b and a.makespan == b.makespan
    assert a.makespan <= ours.makespan
    validate(g, platform, a)
    assert a.bounds is not None and a.bounds.best <= a.makespan
    assert a.bounds.solver_status in ("OPTIMAL", "FEASIBLE")


@pytest.mark.parametrize("objective", ["energy", "throughput"])
def test_other_objectives_keep_the_better_schedule(objective: str) -> None:
    g, platform = random_dag(DagParams(14, ccr=1.0, devices=2), seed=3)
    platform = Platform((Device("p1", watts=30.0, idle_watts=5.0), Device("p2", watts=80.0)),
                        default_link=Link(latency=1.0))
    ours = schedule(g, platform, method="ours", objective=objective)
    s = schedule(g, platform, method="cpsat", objective=objective, opt_time=0.3)
    validate(g, platform, s)
    assert s.score[0] <= ours.score[0] * (1 + 1e-9)


def test_memory_limits_hold_in_the_solver_schedule() -> None:
    g = nx.DiGraph()
    for k in range(5):
        g.add_node(f"src{k}", cost={"x": 1.0, "y": 1.0})
        g.add_node(f"sink{k}", cost={"x": 5.0, "y": 5.0})
        g.add_edge(f"src{k}", f"sink{k}", bytes=60.0, comm=0.0)
    platform = Platform((Device("x", memory=100.0), Device("y", memory=100.0)))
    s = schedule(g, platform, method="cpsat", opt_time=0.3)
    validate(g, platform, s)


def test_lower_bounds_never_exceed_the_optimum() -> None:
    for seed in range(6):
        g, platform = random_dag(DagParams(8, ccr=3.0, devices=3), seed=seed)
        prob = compile_problem(g, platform)
        opt = schedule(g, platform, method="exact")
        assert opt.bounds is not None and opt.bounds.proven
        lb = lower_bounds(prob, Objective.LATENCY)
        assert 0 < lb.best <= opt.makespan * (1 + 1e-9)
        result = solve(prob, Objective.LATENCY, heft(prob), SolverOptions(time=0.5))
        assert result.bound <= opt.makespan * (1 + 1e-9)


def test_bounds_gap() -> None:
    assert Bounds(critical_path=10.0, work=8.0).gap(11.0) == pytest.approx(0.1)
    assert Bounds(solver=5.0, proven=True).gap(7.0) == 0.0
    assert Bounds().gap(1.0) == math.inf and Bounds().gap(0.0) == 0.0
