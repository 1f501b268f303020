"""The merge DP: equal to exhaustive search on small chains and DAGs, legal, and fast paths agree."""

from __future__ import annotations

import itertools
import math
import random

import networkx as nx
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from planc.compiler.costs.model import ComputeFacts, RooflineModel, merge_facts
from planc.compiler.costs.profiles import load_profile
from planc.compiler.merging.merge import (
    Barrier,
    Compute,
    MergeError,
    MergeOptions,
    MergeProblem,
    MergeResult,
    exhaustive_merge,
    legality_errors,
    merge,
    partition_cost,
)

PROFILE = load_profile()
MODELS = {name: RooflineModel(PROFILE, name) for name in ("edge-x86-gpu", "edge-x86-arm", "server-2gpu")}
ORDER_DP = MergeOptions(exact_max_tasks=0)  # forces the order DP even on tiny graphs
SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ------------------------------------------------------------------ independent checks

def independent_cost(problem: MergeProblem, model, result: MergeResult) -> float:
    """The cost definition, computed straight from the model: groups plus cross-device edges."""
    node = dict(zip(problem.names, problem.nodes))
    where = result.placement
    total = 0.0
    for g in result.groups:
        inside = set(g.members)
        if isinstance(node[g.members[0]], Barrier):
            total += node[g.members[0]].seconds
            continue
        internal = sum(b for u, v, b in problem.edges if u in inside and v in inside)
        facts = merge_facts([node[m].facts for m in g.members], 2.0 * internal)
        total += model.compute_time(facts, g.device)
    for u, v, b in problem.edges:
        total += model.transfer_time(b, where[u], where[v])
    return total


def assert_legal(problem: MergeProblem, model, result: MergeResult, max_group: int = 64) -> None:
    graph = problem.digraph()
    node = dict(zip(problem.names, problem.nodes))
    members = [m for g in result.groups for m in g.members]
    assert sorted(members) == sorted(problem.names)
    dep = model.deployment
    for g in result.groups:
        spec = dep.device(g.device).spec
        if any(isinstance(node[m], Barrier) for m in g.members):
            assert len(g.members) == 1 and g.barrier
            assert g.device == (node[g.members[0]].device or dep.host)
            continue
        assert len(g.members) <= max_group
        assert all(node[m].devices is None or g.device in node[m].devices for m in g.members)
        assert sum(node[m].memory for m in g.members) <= spec.memory_bytes
        inside = set(g.members)
        below = set().union(*(nx.descendants(graph, m) for m in inside)) - inside
        above = set().union(*(nx.ancestors(graph, m) for m in inside)) - inside
        assert not below & above, f"group {g.members} is not convex"
    blocks = [frozenset(g.members) for g in result.groups]
    assert nx.is_directed_acyclic_graph(nx.quotient_graph(graph, blocks))
    # Groups in the returned order, members in theirs: a topological order of the tasks.
    pos = {m: i for i, m in enumerate(members)}
    assert all(pos[u] < pos[v] for u, v, _ in problem.edges)
    assert result.cost >= 0 and result.compute_s >= 0 and result.transfer_s >= 0
    assert result.cost == pytest.approx(independent_cost(problem, model, result), rel=1e-9, abs=1e-15)


def same_cost(a: MergeResult, b: MergeResult) -> bool:
    return math.isclose(a.cost, b.cost, rel_tol=1e-9, abs_tol=1e-15)


# --------------------------------------------------------------------------- strategies

@st.composite
def task_nodes(draw, devices: tuple[str, ...]):
    if draw(st.integers(0, 9)) == 0:
        return Barrier(seconds=draw(st.floats(0, 1e-3)))
    facts = ComputeFacts(
        flops=10 ** draw(st.floats(4, 12)), bytes_accessed=10 ** draw(st.floats(2, 9.5)),
        dtype=draw(st.sampled_from(["f32", "f16", "bf16", "i8"])),
    )
    # Working memory straddles the devices' capacities (8, 32, 80, 256 GiB) now and then.
    memory = draw(st.one_of(st.none(), st.floats(1e9, 1.2e11)))
    allowed = draw(st.one_of(st.none(), st.frozensets(st.sampled_from(devices), min_size=1)))
    return Compute(facts, memory_bytes=memory, devices=allowed)


@st.composite
def problems(draw, *, chain: bool, max_tasks: int):
    deployment = draw(st.sampled_from(sorted(MODELS)))
    model = MODELS[deployment]
    n = draw(st.integers(1, max_tasks))
    tasks = [(f"t{i}", draw(task_nodes(model.deployment.names))) for i in range(n)]
    if chain:
        pairs = [(i, i + 1) for i in range(n - 1)]
    else:
        density = draw(st.floats(0, 0.8))
        pairs = [(i, j) for i in range(n) for j in range(i + 1, n) if draw(st.floats(0, 1)) < density]
    edges = [(f"t{i}", f"t{j}", 10 ** draw(st.floats(0, 9))) for i, j in pairs]
    return model, MergeProblem.build(tasks, edges)


def solve_both(model, problem, options: MergeOptions | None = None):
    """(dp, exhaustive) results, or None when neither has a legal solution."""
    options = options or MergeOptions()
    try:
        reference = exhaustive_merge(problem, model, options=options)
    except MergeError:
        with pytest.raises(MergeError):
            merge(problem, model, options=options)
        return None
    return merge(problem, model, options=options), reference


# --------------------------------------------------------------------------- properties

@SETTINGS
@given(problems(chain=True, max_tasks=12))
def test_chain_dp_equals_exhaustive(case):
    model, problem = case
    both = solve_both(model, problem)
    assume(both is not None)
    dp, reference = both
    assert dp.exact and same_cost(dp, reference)
    assert_legal(problem, model, dp)
    ordered = merge(problem, model, options=ORDER_DP)  # the large-graph DP is exact on chains too
    assert not ordered.exact and same_cost(ordered, reference), (ordered.cost, reference.cost)
    assert_legal(problem, model, ordered)


@SETTINGS
@given(problems(chain=False, max_tasks=8))
def test_dag_dp_equals_exhaustive(case):
    model, problem = case
    both = solve_both(model, problem)
    assume(both is not None)
    dp, reference = both
    assert dp.exact and same_cost(dp, reference), (dp.cost, reference.cost)
    assert_legal(problem, model, dp)
    assert_legal(problem, model, reference)


@SETTINGS
@given(problems(chain=False, max_tasks=8))
def test_order_dp_on_dags_is_legal_and_never_below_the_optimum(case):
    model, problem = case
    both = solve_both(model, problem, MergeOptions(exact_max_tasks=0))
    assume(both is not None)
    ordered, reference = both
    assert not ordered.exact and ordered.cost >= reference.cost * (1 - 1e-9)
    assert_legal(problem, model, ordered)


@SETTINGS
@given(problems(chain=False, max_tasks=7), st.integers(1, 3))
def test_max_group_is_respected(case, max_group):
    model, problem = case
    options = MergeOptions(max_group=max_group)
    both = solve_both(model, problem, options)
    assume(both is not None)
    dp, reference = both
    assert same_cost(dp, reference)
    assert_legal(problem, model, dp, max_group)


# ------------------------------------------------------------------------------- units

def facts(flops: float = 1e6, nbytes: float = 1e5, dtype: str = "f32") -> Compute:
    return Compute(ComputeFacts(flops, nbytes, dtype))


def chain(nodes, nbytes: float = 1e4) -> MergeProblem:
    names = [f"t{i}" for i in range(len(nodes))]
    return MergeProblem.build(list(zip(names, nodes)), [(a, b, nbytes) for a, b in itertools.pairwise(names)])


def test_a_chain_of_small_tasks_becomes_one_module():
    model = RooflineModel(PROFILE, "edge-avx2")
    problem = chain([facts() for _ in range(5)])
    result = merge(problem, model)
    assert [g.members for g in result.groups] == [tuple(problem.names)]
    # By hand from devices.toml: one 10 us dispatch, 5e6 flops at 972.8 GFLOP/s vs
    # (5e5 - 2 * 4 * 1e4) bytes at 51.2 GB/s.
    assert result.cost == pytest.approx(10e-6 + max(5e6 / 972.8e9, (5e5 - 8e4) / 51.2e9))


def test_a_barrier_splits_the_chain_and_runs_on_the_host():
    model = MODELS["edge-x86-gpu"]
    problem = chain([facts(), facts(), Barrier(seconds=0.002), facts(), facts()])
    result = merge(problem, model)
    assert [g.members for g in result.groups] == [("t0", "t1"), ("t2",), ("t3", "t4")]
    assert result.groups[1].barrier and result.groups[1].device == "cpu0" and result.groups[1].seconds == 0.002


def test_heavy_compute_goes_to_the_gpu_and_pays_the_transfer():
    model = MODELS["edge-x86-gpu"]
    problem = chain([Barrier(), facts(5e12, 1e8, "f16"), facts(5e12, 1e8, "f16"), Barrier()], nbytes=1e7)
    result = merge(problem, model)
    assert [(g.members, g.device) for g in result.groups][1] == (("t1", "t2"), "gpu0")
    assert result.transfer_s == pytest.approx(2 * (10e-6 + 1e7 / 25e9))


def test_memory_budget_keeps_big_tasks_apart():
    model = MODELS["edge-x86-gpu"]
    big = Compute(ComputeFacts(1e9, 1e6, "f32"), memory_bytes=50 * 2**30)  # 2 x 50 GiB > 80 GiB
    result = merge(chain([big, big]), model)
    assert [(g.members, g.device) for g in result.groups] == [(("t0",), "gpu0"), (("t1",), "gpu0")]


def test_allowed_devices_and_a_task_that_fits_nowhere():
    model = MODELS["edge-x86-gpu"]
    pinned = Compute(ComputeFacts(1e13, 1e6, "f16"), devices=frozenset({"cpu0"}))
    result = merge(chain([pinned, facts(1e13, 1e6, "f16")]), model)
    assert result.placement == {"t0": "cpu0", "t1": "gpu0"}
    huge = Compute(ComputeFacts(1e6, 1e6, "f32"), memory_bytes=1e12)
    with pytest.raises(MergeError, match="task 't1' fits no device"):
        merge(chain([facts(), huge]), model)
    with pytest.raises(MergeError, match="unknown device 'gpu9'"):
        merge(chain([Compute(ComputeFacts(1, 1, "f32"), devices=frozenset({"gpu9"}))]), model)


def test_group_cost_callback_replaces_the_roofline():
    model = MODELS["edge-x86-gpu"]
    calls = []

    def flat(members, device):
        calls.append((members, device))
        return 1.0 if device == "cpu0" else 2.0

    problem = chain([facts() for _ in range(4)])
    for options in (MergeOptions(group_cost=flat), MergeOptions(group_cost=flat, exact_max_tasks=0)):
        result = merge(problem, model, options=options)
        assert [(g.members, g.device) for g in result.groups] == [(tuple(problem.names), "cpu0")]
        assert result.cost == 1.0
    assert (("t0", "t1"), "gpu0") in calls


class ScalarOnly:
    """A cost model without the batch method: the order DP takes its scalar path."""

    def __init__(self, base):
        self.base = base
        self.deployment = base.deployment

    def compute_time(self, facts, device):
        return self.base.compute_time(facts, device)

    def transfer_time(self, nbytes, src, dst):
        return self.base.transfer_time(nbytes, src, dst)

    def tool_time(self, declared_s, *, key=None):
        return self.base.tool_time(declared_s, key=key)

    def energy(self, seconds, device):
        return self.base.energy(seconds, device)

    def idle_energy(self, seconds, device):
        return self.base.idle_energy(seconds, device)

    def describe(self):
        return {"model": "scalar"}


@settings(max_examples=15, deadline=None)
@given(problems(chain=True, max_tasks=8))
def test_scalar_path_equals_batch_path(case):
    model, problem = case
    try:
        batch = merge(problem, model, options=ORDER_DP)
    except MergeError:
        return
    scalar = merge(problem, ScalarOnly(model), options=ORDER_DP)
    assert same_cost(batch, scalar)


def test_problem_validation():
    with pytest.raises(MergeError, match="task 'a' appears twice"):
        MergeProblem.build([("a", facts()), ("a", facts())])
    with pytest.raises(MergeError, match="unknown task 'c'"):
        MergeProblem.build({"a": facts()}, [("a", "c", 1.0)])
    with pytest.raises(MergeError, match="bytes >= 0"):
        MergeProblem.build({"a": facts(), "b": facts()}, [("a", "b", -1.0)])
    with pytest.raises(MergeError, match="cycle: a -> b"):
        MergeProblem.build({"a": facts(), "b": facts()}, [("a", "b", 1.0), ("b", "a", 1.0)])
    with pytest.raises(MergeError, match="expected Compute or Barrier, found str"):
        MergeProblem.build({"a": "model"})  # type: ignore[dict-item]
    g = nx.DiGraph()
    g.add_node("x", task=facts())
    g.add_node("y", task=Barrier(0.1))
    g.add_edge("x", "y", bytes=8.0)
    problem = MergeProblem.from_digraph(g)
    assert problem.names == ("x", "y") and problem.edges == (("x", "y", 8.0),)
    g.add_node("z")
    with pytest.raises(MergeError, match="task 'z' has no 'task' attribute"):
        MergeProblem.from_digraph(g)


def test_legality_errors_and_partition_cost():
    model = MODELS["edge-x86-gpu"]
    # a -> b -> c and a -> c: {a, c} without b is not convex.
    problem = MergeProblem.build({"a": facts(), "b": facts(), "c": facts(), "t": Barrier(0.01)},
                                 [("a", "b", 1.0), ("b", "c", 1.0), ("a", "c", 1.0), ("c", "t", 1.0)])
    good = [(("a", "b", "c"), "gpu0"), (("t",), "cpu0")]
    assert legality_errors(problem, model, good) == []
    assert partition_cost(problem, model, good) == pytest.approx(
        independent_cost(problem, model, MergeResult(tuple(_groups(good)), 0, 0, 0, True)))
    cases = {
        "not convex": [(("a", "c"), "gpu0"), (("b",), "gpu0"), (("t",), "cpu0")],
        "a barrier is never merged": [(("a", "b", "c", "t"), "cpu0")],
        "not allowed there": [(("a", "b", "c"), "gpu0"), (("t",), "gpu0")],
        "task 't' is in no group": [(("a", "b", "c"), "gpu0")],
        "is in groups 0 and 1": [(("a", "b", "c"), "gpu0"), (("t", "a"), "cpu0")],
        "unknown device 'gpu7'": [(("a", "b", "c"), "gpu7"), (("t",), "cpu0")],
        "group 1 is empty": [(("a", "b", "c", "t"), "gpu0"), ((), "cpu0")],
    }
    for expected, groups in cases.items():
        errors = legality_errors(problem, model, groups)
        assert any(expected in e for e in errors), (expected, errors)
        with pytest.raises(MergeError, match="illegal partition"):
            partition_cost(problem, model, groups)
    # Two convex groups whose quotient has a cycle: x1 -> y1 and y2 -> x2.
    cyc = MergeProblem.build({n: facts() for n in ("x1", "x2", "y1", "y2")}, [("x1", "y1", 1.0), ("y2", "x2", 1.0)])
    errors = legality_errors(cyc, model, [(("x1", "x2"), "cpu0"), (("y1", "y2"), "cpu0")])
    assert errors == ["the quotient graph of the groups has a cycle"]


def _groups(pairs):
    from planc.compiler.merging.merge import Group
    return [Group(tuple(m), d, 0.0, False) for m, d in pairs]


def test_exhaustive_refuses_big_graphs_and_empty_problems_are_free():
    model = MODELS["edge-x86-gpu"]
    with pytest.raises(MergeError, match="at most 8 tasks, found 9"):
        exhaustive_merge(chain([facts()] * 9), model, limit=8)
    assert merge(MergeProblem.build({}), model).cost == 0.0


def random_dag(n: int, seed: int, barrier_rate: float = 0.05) -> MergeProblem:
    rng = random.Random(seed)
    tasks, edges = [], []
    for i in range(n):
        if rng.random() < barrier_rate:
            tasks.append((f"t{i}", Barrier(rng.uniform(0, 1e-3))))
        else:
            tasks.append((f"t{i}", facts(10 ** rng.uniform(5, 11), 10 ** rng.uniform(3, 8.5),
                                         rng.choice(["f32", "f16", "i8"]))))
        for j in {rng.randrange(max(0, i - 20), i) for _ in range(rng.randint(1, 3))} if i else ():
            edges.append((f"t{j}", f"t{i}", 10 ** rng.uniform(3, 8)))
    return MergeProblem.build(tasks, edges)


def test_mid_size_dag_takes_the_order_dp_and_stays_legal():
    model = MODELS["server-2gpu"]
    problem = random_dag(400, seed=3)
    result = merge(problem, model)
    assert not result.exact and result.orders >= 1
    assert_legal(problem, model, result)
    groups = [(g.members, g.device) for g in result.groups]
    assert partition_cost(problem, model, groups) == pytest.approx(result.cost)
    # Never worse than leaving every task alone on its cheapest device.
    assert result.cost <= merge(problem, model, options=MergeOptions(max_group=1)).cost * (1 + 1e-9)
    assert merge(problem, model) == result  # deterministic


@pytest.mark.slow
def test_ten_thousand_task_chain_and_dag_merge():
    model = MODELS["edge-x86-gpu"]
    long_chain = chain([facts(10 ** (5 + i % 6), 10 ** (3 + i % 5)) for i in range(10_000)])
    result = merge(long_chain, model)
    assert sum(len(g.members) for g in result.groups) == 10_000
    assert max(len(g.members) for g in result.groups) <= 64
    dag = random_dag(10_000, seed=1)
    result = merge(dag, model)
    assert legality_errors(dag, model, [(g.members, g.device) for g in result.groups]) == []
