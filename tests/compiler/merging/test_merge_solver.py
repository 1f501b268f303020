"""Merge candidates re-chosen by CP-SAT: legal, never worse than the order DP, optimal where
the order DP alone is more than 5 % above the optimum (server-2gpu, 10 tasks)."""

from __future__ import annotations

import pytest
from planc.compiler.merging.merge import MergeOptions, _pricing, merge, partition_cost
from planc.compiler.merging.solver import MergeSolverOptions, candidates
from test_merge_dp import MODELS, assert_legal, random_dag

DP_ONLY = MergeOptions(exact_max_tasks=0, solver_time=0)
WITH_SOLVER = MergeOptions(exact_max_tasks=0)


def _worst_dp_case() -> tuple:
    model = MODELS["server-2gpu"]
    for seed in range(1000, 1020):
        problem = random_dag(10, seed)
        exact = merge(problem, model, options=MergeOptions(exact_budget=20_000_000))
        dp = merge(problem, model, options=DP_ONLY)
        if exact.exact and dp.cost > exact.cost * 1.05:
            return model, problem, exact, dp
    pytest.fail("no 10-task DAG where the order DP alone is 5 % above the optimum")


def test_solver_closes_the_order_dp_gap_and_stays_legal() -> None:
    model, problem, exact, dp = _worst_dp_case()
    solved = merge(problem, model, options=WITH_SOLVER)
    assert not solved.exact
    assert_legal(problem, model, solved)
    assert solved.cost == pytest.approx(exact.cost, rel=1e-9) and solved.cost < dp.cost
    groups = [(g.members, g.device) for g in solved.groups]
    assert partition_cost(problem, model, groups) == pytest.approx(solved.cost)
    assert merge(problem, model, options=WITH_SOLVER) == solved  # deterministic


def test_solver_is_never_worse_than_the_dp() -> None:
    model = MODELS["edge-x86-gpu"]
    problem = random_dag(14, 1)
    dp = merge(problem, model, options=DP_ONLY)
    solved = merge(problem, model, options=MergeOptions(exact_max_tasks=0, solver_time=0.2))
    assert solved.cost <= dp.cost * (1 + 1e-12)
    assert_legal(problem, model, solved)


def test_candidates_are_legal_runs() -> None:
    p = _pricing(random_dag(12, 5), MODELS["server-2gpu"], 64, None)
    groups = candidates(p, [], MergeSolverOptions(orders=8, max_len=4))
    assert all(len(g) <= 4 and list(g) == sorted(g) for g in groups)
    assert {(i,) for i in range(p.n)} <= set(groups)
    assert all(any(p.group_seconds(g, d) < float("inf") for d in range(len(p.devices))) for g in groups)
