"""Properties of every scheduler on random small graphs (hypothesis)."""

import itertools
import math

import networkx as nx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from planc.compiler.scheduling import (
    Device,
    Link,
    Method,
    Objective,
    Platform,
    Schedule,
    ScheduleInfeasible,
    schedule,
    validate,
)
from planc.compiler.scheduling.listsched import Timing
from planc.compiler.scheduling.problem import Problem, compile_problem
from planc.compiler.scheduling.schedule import better, score_of

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def instances(draw: st.DrawFn, max_tasks: int = 8, memory: bool = False) -> tuple[nx.DiGraph, Platform]:
    n = draw(st.integers(1, max_tasks))
    p = draw(st.integers(2, 3))
    names = [f"d{k}" for k in range(p)]
    g = nx.DiGraph()
    for i in range(n):
        costs = {d: draw(st.sampled_from([math.inf, 0.0, 1.0, 2.5, 4.0, 7.0, 12.0])) for d in names}
        if all(c == math.inf for c in costs.values()):
            costs[names[0]] = 3.0
        g.add_node(f"t{i}", cost=costs, memory=float(draw(st.integers(0, 3))) if memory else 0.0)
    for i, j in itertools.combinations(range(n), 2):
        if draw(st.booleans()):
            if draw(st.booleans()):
                g.add_edge(f"t{i}", f"t{j}", bytes=float(draw(st.integers(0, 8))))
            else:
                g.add_edge(f"t{i}", f"t{j}", comm=float(draw(st.integers(0, 6))))
    devices = tuple(
        Device(d, watts=float(draw(st.integers(0, 300))), idle_watts=float(draw(st.integers(0, 30))),
               memory=float(draw(st.integers(3, 12))) if memory else math.inf)
        for d in names)
    links = {(a, b): Link(float(draw(st.integers(0, 2))), float(draw(st.integers(1, 4))))
             for a, b in itertools.permutations(names, 2) if draw(st.booleans())}
    return g, Platform(devices, links, default_link=Link(0.5, 2.0), pue=draw(st.sampled_from([1.0, 1.5])))


def _check(g: nx.DiGraph, platform: Platform, s: Schedule) -> None:
    validate(g, platform, s)
    assert s.makespan >= 0 and s.energy >= 0 and s.period >= 0
    assert all(pl.start >= 0 and pl.finish >= pl.start for pl in s.placements.values())


@SETTINGS
@given(instances(), st.sampled_from(list(Objective)))
def test_every_method_gives_a_valid_schedule(inst: tuple[nx.DiGraph, Platform], objective: Objective) -> None:
    g, platform = inst
    for method in Method:
        _check(g, platform, schedule(g, platform, objective=objective, method=method))


@SETTINGS
@given(instances())
def test_exact_le_ours_le_heft_for_latency(inst: tuple[nx.DiGraph, Platform]) -> None:
    g, platform = inst
    heft = schedule(g, platform, method="heft").makespan
    peft = schedule(g, platform, method="peft").makespan
    ours = schedule(g, platform, method="ours").makespan
    exact = schedule(g, platform, method="exact").makespan
    tol = 1e-9 * max(heft, 1.0)
    assert exact <= ours + tol
    assert ours <= heft + tol and ours <= peft + tol


@SETTINGS
@given(instances(), st.sampled_from(list(Objective)))
def test_ours_is_never_worse_than_heft_on_the_objective(inst: tuple[nx.DiGraph, Platform],
                                                        objective: Objective) -> None:
    g, platform = inst
    heft = schedule(g, platform, objective=objective, method="heft")
    ours = schedule(g, platform, objective=objective, method="ours")
    assert not better(heft.score, ours.score)


def _semi_active(prob: Problem, order: list[int], dev: tuple[int, ...]) -> Timing:
    start, finish, avail = [0.0] * prob.n, [0.0] * prob.n, [0.0] * prob.p
    for i in order:
        d = dev[i]
        ready = max([avail[d]] + [finish[u] + prob.comm[e][dev[u] * prob.p + d] for u, e in prob.preds[i]])
        start[i], finish[i] = ready, ready + prob.cost[i][d]
        avail[d] = finish[i]
    return Timing(list(dev), start, finish)


def _brute_force(prob: Problem, objective: Objective) -> tuple[float, float]:
    """Every placement times every topological order, each task as early as possible."""
    orders = [list(o) for o in itertools.permutations(range(prob.n))
              if all(o.index(u) < o.index(v) for u, v in prob.edges)]
    best = (math.inf, math.inf)
    for dev in itertools.product(range(prob.p), repeat=prob.n):
        if any(prob.cost[i][d] == math.inf for i, d in enumerate(dev)):
            continue
        for order in orders:
            score = score_of(prob, _semi_active(prob, order, dev), objective)
            if better(score, best):
                best = score
    return best


@settings(max_examples=40, deadline=None)
@given(instances(max_tasks=5), st.sampled_from(list(Objective)))
def test_exact_equals_brute_force_on_tiny_graphs(inst: tuple[nx.DiGraph, Platform], objective: Objective) -> None:
    g, platform = inst
    s = schedule(g, platform, objective=objective, method="exact")
    expected = _brute_force(compile_problem(g, platform), objective)
    assert not better(s.score, expected) and not better(expected, s.score), (s.score, expected)


@SETTINGS
@given(instances(max_tasks=6, memory=True), st.sampled_from([Method.HEFT, Method.OURS, Method.EXACT]))
def test_schedules_under_memory_capacities_validate_or_are_refused(inst: tuple[nx.DiGraph, Platform],
                                                                   method: Method) -> None:
    g, platform = inst
    try:
        s = schedule(g, platform, method=method)
    except ScheduleInfeasible as err:
        assert "memory" in str(err)
        return
    _check(g, platform, s)
