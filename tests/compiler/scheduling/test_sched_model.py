"""The scheduling model: platform, input checks, metrics, validate, enums, generator."""

import dataclasses
import math
import statistics
from types import MappingProxyType

import networkx as nx
import pytest
from planc.compiler.scheduling import (
    Constraint,
    Device,
    Link,
    Method,
    Objective,
    Platform,
    PlatformError,
    Schedule,
    ScheduleInputError,
    ScheduleViolation,
    schedule,
    validate,
)
from random_dags import DagParams, random_dag


def _chain() -> tuple[nx.DiGraph, Platform]:
    """a -> b; a only fits cpu, b runs on either; 100 bytes over a 1 s + 100 B/s link."""
    g = nx.DiGraph()
    g.add_node("a", cost={"cpu": 2.0, "gpu": math.inf}, memory=10.0)
    g.add_node("b", cost={"cpu": 6.0, "gpu": 1.0}, memory=10.0)
    g.add_edge("a", "b", bytes=100.0)
    platform = Platform(
        (Device("cpu", memory=500.0, watts=10.0, idle_watts=1.0), Device("gpu", memory=500.0, watts=100.0)),
        links={("cpu", "gpu"): Link(latency=1.0, bandwidth=100.0)}, pue=1.5)
    return g, platform


def test_transfer_time_is_latency_plus_bytes_over_bandwidth() -> None:
    g, platform = _chain()
    s = schedule(g, platform, method="heft")
    # b on gpu: 2 + (1 + 100/100) + 1 = 5 beats b on cpu: 2 + 6 = 8.
    assert s["b"].device == "gpu" and s["b"].start == pytest.approx(4.0) and s.makespan == pytest.approx(5.0)
    assert platform.comm_time(100.0, "cpu", "cpu") == 0.0
    assert platform.comm_time(100.0, "gpu", "cpu") == 0.0  # default link: no latency, infinite bandwidth


def test_energy_counts_busy_and_idle_power_times_pue() -> None:
    g, platform = _chain()
    s = schedule(g, platform, method="heft")
    # cpu busy 2 s at 10 W, idle 3 s at 1 W; gpu busy 1 s at 100 W, no idle power.
    assert s.energy == pytest.approx(1.5 * (2 * 10 + 3 * 1 + 1 * 100))
    # period: cpu 2 s, gpu 1 s, link cpu->gpu 2 s.
    assert s.period == pytest.approx(2.0)


def test_energy_objective_keeps_work_on_the_frugal_device() -> None:
    g, platform = _chain()
    s = schedule(g, platform, objective="energy", method="exact")
    assert s["b"].device == "cpu"  # 6 s at 10 W beats 1 s at 100 W
    assert s.energy == pytest.approx(1.5 * 80) and s.objective is Objective.ENERGY
    assert schedule(g, platform, objective="energy", method="ours").energy == pytest.approx(s.energy)


def test_explicit_comm_wins_over_bytes() -> None:
    g, platform = _chain()
    g.edges["a", "b"]["comm"] = 10.0
    s = schedule(g, platform, method="heft")
    assert s["b"].device == "cpu" and s.makespan == pytest.approx(8.0)


@pytest.mark.parametrize(("enum", "good", "bad"), [(Objective, "energy", "speed"), (Method, "peft", "magic")])
def test_enums_parse_strings_and_list_the_choices(enum: type, good: str, bad: str) -> None:
    assert enum.parse(good) is enum(good)
    assert enum.parse(enum(good)) is enum(good)
    with pytest.raises(ValueError, match="expected one of: ") as err:
        enum.parse(bad)
    assert all(m.value in str(err.value) for m in enum)


def test_schedule_rejects_unknown_objective_and_method() -> None:
    g, platform = _chain()
    with pytest.raises(ValueError, match="unknown objective 'fast'"):
        schedule(g, platform, objective="fast")
    with pytest.raises(ValueError, match="unknown method 'best'.*heft"):
        schedule(g, platform, method="best")


@pytest.mark.parametrize(("build", "message"), [
    (lambda: Platform(()), "at least one device"),
    (lambda: Platform((Device("x"), Device("x"))), "duplicate device name"),
    (lambda: Platform((Device("x"),), links={("x", "y"): Link()}), "unknown device 'y'"),
    (lambda: Link(bandwidth=0.0), "bandwidth must be > 0"),
    (lambda: Link(latency=-1.0), "latency must be"),
    (lambda: Device("x", memory=-1.0), "memory must be a number >= 0"),
    (lambda: Platform((Device("x"),), pue=0.5), "pue must be"),
])
def test_bad_platforms_are_refused_with_the_reason(build, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PlatformError, match=message):
        build()


def _graph_error(mutate) -> str:  # type: ignore[no-untyped-def]
    g, platform = _chain()
    mutate(g)
    with pytest.raises(ScheduleInputError) as err:
        schedule(g, platform)
    return str(err.value)


def test_bad_graphs_are_refused_naming_the_bad_thing() -> None:
    assert "cycle: 'a' -> 'b' -> 'a'" in _graph_error(lambda g: g.add_edge("b", "a"))
    assert "unknown device 'tpu'" in _graph_error(lambda g: g.nodes["a"]["cost"].update(tpu=1.0))
    assert "task 'a': cost on 'cpu' must be >= 0" in _graph_error(lambda g: g.nodes["a"]["cost"].update(cpu=-1.0))
    assert "task 'a' can run on no device" in _graph_error(lambda g: g.nodes["a"]["cost"].update(cpu=math.inf))
    assert "its memory fits no device" in _graph_error(lambda g: g.nodes["a"].update(memory=1e9))
    assert "'cost' must be a mapping" in _graph_error(lambda g: g.nodes["b"].update(cost=3.0))
    assert "edge 'a' -> 'b': bytes must be >= 0" in _graph_error(lambda g: g.edges["a", "b"].update(bytes=-5))
    assert "comm must be a number" in _graph_error(lambda g: g.edges["a", "b"].update(comm="x"))


def _tampered(s: Schedule, task: str, **changes: object) -> Schedule:
    placements = dict(s.placements)
    placements[task] = dataclasses.replace(placements[task], **changes)
    return dataclasses.replace(s, placements=MappingProxyType(placements))


@pytest.mark.parametrize(("task", "changes", "constraint"), [
    ("b", {"start": 3.0, "finish": 4.0}, Constraint.PRECEDENCE),        # data not there yet
    ("a", {"device": "gpu"}, Constraint.PLACEMENT),                      # cost inf on gpu
    ("a", {"device": "npu"}, Constraint.COMPLETENESS),
    ("b", {"finish": 4.5}, Constraint.COST),                             # runs shorter than its cost
    ("a", {"start": -1.0, "finish": 1.0}, Constraint.COST),
])
def test_validate_names_the_violated_constraint(task: str, changes: dict[str, object],
                                                constraint: Constraint) -> None:
    g, platform = _chain()
    s = schedule(g, platform, method="heft")
    validate(g, platform, s)
    with pytest.raises(ScheduleViolation) as err:
        validate(g, platform, _tampered(s, task, **changes))
    assert err.value.constraint is constraint and constraint.value in str(err.value)


def test_validate_catches_overlap_on_a_device() -> None:
    g, platform = _chain()
    g.remove_edge("a", "b")
    s = schedule(g, platform, method="heft")
    bad = _tampered(s, "b", device="cpu", start=1.0, finish=7.0)
    with pytest.raises(ScheduleViolation, match="overlap on 'cpu'") as err:
        validate(g, platform, bad)
    assert err.value.constraint is Constraint.EXCLUSIVITY


def test_validate_catches_live_data_over_capacity_and_missing_tasks() -> None:
    g, platform = _chain()
    s = schedule(g, platform, method="heft")
    small = dataclasses.replace(platform, devices=tuple(dataclasses.replace(d, memory=50.0) for d in platform.devices))
    # a's 100-byte output stays on the cpu until b starts: 100 > 50.
    with pytest.raises(ScheduleViolation, match="holds 100 bytes of live data") as err:
        validate(g, small, s)
    assert err.value.constraint is Constraint.MEMORY
    g.edges["a", "b"]["bytes"] = 40.0
    validate(g, small, schedule(g, small, method="heft"))
    g.add_node("c", cost={"cpu": 1.0})
    with pytest.raises(ScheduleViolation, match="task 'c' is not placed"):
        validate(g, platform, s)


def test_schedulers_respect_live_data_limits() -> None:
    # Six independent producers of 60-byte outputs, each with its own consumer; a device
    # holds 100 bytes, so no device may hold two pending outputs at once.
    g = nx.DiGraph()
    for k in range(6):
        g.add_node(f"src{k}", cost={"x": 1.0, "y": 1.0})
        g.add_node(f"sink{k}", cost={"x": 5.0, "y": 5.0})
        g.add_edge(f"src{k}", f"sink{k}", bytes=60.0, comm=0.0)
    platform = Platform((Device("x", memory=100.0), Device("y", memory=100.0)))
    unbounded = Platform((Device("x"), Device("y")))
    with pytest.raises(ScheduleViolation, match="live data"):
        validate(g, platform, schedule(g, unbounded, method="heft"))  # all sources first: too much
    for method in ("heft", "peft", "greedy", "ours", "exact"):
        validate(g, platform, schedule(g, platform, method=method))


def test_auto_proves_small_graphs_and_exact_refuses_big_ones() -> None:
    g, platform = random_dag(DagParams(8, devices=3), seed=1)
    assert schedule(g, platform).method is Method.EXACT
    big, platform = random_dag(DagParams(30, devices=3), seed=1)
    assert schedule(big, platform).method in (Method.OURS, Method.CPSAT)
    with pytest.raises(ScheduleInputError, match="at most 16 tasks"):
        schedule(big, platform, method="exact")
    s = schedule(big, platform, method="exact", budget_s=0.2)
    validate(big, platform, s)


def test_ours_is_deterministic_for_a_seed() -> None:
    g, platform = random_dag(DagParams(60, ccr=5.0, devices=4), seed=3)
    a = schedule(g, platform, method="ours", seed=7)
    b = schedule(g, platform, method="ours", seed=7)
    assert a == b and a.makespan == b.makespan


def test_generator_follows_the_heft_paper_parameters() -> None:
    params = DagParams(200, alpha=1.0, out_degree=3, ccr=2.0, beta=0.5, avg_cost=40.0, devices=4)
    g, platform = random_dag(params, seed=11)
    again, _ = random_dag(params, seed=11)
    assert nx.is_directed_acyclic_graph(g) and g.number_of_nodes() == 200
    assert list(g.edges(data=True)) == list(again.edges(data=True))
    assert platform.names == ("p1", "p2", "p3", "p4")
    costs = [c for _, a in g.nodes(data=True) for c in a["cost"].values()]
    comms = [a["comm"] for _, _, a in g.edges(data=True)]
    assert statistics.mean(costs) == pytest.approx(40.0, rel=0.15)
    assert statistics.mean(comms) / statistics.mean(costs) == pytest.approx(2.0, rel=0.2)
    for _, a in g.nodes(data=True):  # w_ij within w_i (1 +- beta/2)
        row = list(a["cost"].values())
        assert max(row) <= min(row) * 1.25 / 0.75 + 1e-9
    assert all(g.in_degree(t) for t in g if t >= len([t for t in g if g.in_degree(t) == 0]))


def test_generator_shape_alpha_makes_graphs_wider() -> None:
    def depth(alpha: float) -> float:
        return statistics.mean(nx.dag_longest_path_length(random_dag(DagParams(400, alpha=alpha), seed=s)[0])
                               for s in range(5))
    assert depth(0.5) > depth(1.0) > depth(2.0)
