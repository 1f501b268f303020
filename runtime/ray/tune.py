"""Measures the Ray engine's costs on a live cluster and writes them as a deployment for the compiler.

A group dispatched through Ray costs an actor round trip (about a millisecond) where the
local engine costs microseconds, and a value crossing nodes costs an object-store
transfer. `planrt node tune` measures both and writes a deployment file in the schema of
planc's devices.toml: each node kind's `dispatch_us` and `memory_gib`, a link per node
pair, and a deployment whose device instances are named after the nodes, so `planc
compile --deploy FILE` optimizes (merges, places) for this cluster and the Ray engine
follows the schedule's placement node by node.
"""

from __future__ import annotations

import functools
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from planc.runtime.host.detect import KNOWN_TARGETS, ranked_variants
from planc.runtime.ray.cluster import LABEL_MEMORY, ClusterError, Node

__all__ = ["IREE_DISPATCH_US", "EngineCosts", "NodeCost", "deployment_toml", "measure", "write_deployment"]

# The local IREE dispatch the shipped profile assumes for a CPU (compiler/costs/devices.toml); the
# Ray round trip measured here is added to it.
IREE_DISPATCH_US = 10.0
SMALL_BYTES = 1024
LARGE_BYTES = 8 << 20


@dataclass(frozen=True, slots=True)
class NodeCost:
    name: str
    kind: str  # the best CPU target the node runs: its device kind in the deployment
    gpus: tuple[str, ...]  # a device kind per CUDA device
    memory_gib: float
    dispatch_s: float  # median round trip of an empty actor call from this driver


@dataclass(frozen=True, slots=True)
class EngineCosts:
    """What `measure` found: per node, and per node pair (latency s, bandwidth bytes/s)."""

    address: str
    host: str  # the node the driver runs on (the head): tools and gates run there
    nodes: tuple[NodeCost, ...]
    links: tuple[tuple[str, str, float, float], ...]

    def summary(self) -> str:
        lines = [f"{'node':<12} {'kind':<15} {'dispatch':>10}"]
        lines += [f"{n.name:<12} {n.kind:<15} {n.dispatch_s * 1e3:>8.3f}ms" for n in self.nodes]
        lines += [f"link {a} <-> {b}: latency {lat * 1e3:.3f} ms, {bw / 1e9:.3f} GB/s" for a, b, lat, bw in self.links]
        return "\n".join(lines)


def _median_time(fn: Callable[[], Any], n: int) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _kinds(node: Node) -> tuple[str, tuple[str, ...]]:
    assert node.host is not None
    every: dict[str, dict[str, Any]] = {t: {} for t in KNOWN_TARGETS}
    cpu = ranked_variants(every, node.host, device="cpu")
    gpu = ranked_variants(every, node.host, device="gpu")
    return (cpu[0] if cpu else "vmvx"), tuple(gpu[:1] * len(node.host.cuda))


def measure(address: str | None = None, *, calls: int = 200) -> EngineCosts:
    """Round trips to one probe actor per labelled node, and object transfers between them."""
    from planc.runtime.ray.actor import ModuleHost
    from planc.runtime.ray.engine import connect

    ray = connect(address)
    actors: dict[str, Any] = {}
    try:
        raw = [i for i in ray.nodes() if i.get("Alive")]
        nodes = [(Node.from_ray(i), "node:__internal_head__" in i.get("Resources", {})) for i in raw]
        usable = sorted(((n, head) for n, head in nodes if n.host is not None), key=lambda nh: nh[0].name)
        if not usable:
            raise ClusterError("no node of this cluster has planc labels; start nodes with `planrt node start`")
        probe = ray.remote(ModuleHost)
        for node, _ in usable:
            actors[node.name] = probe.options(num_cpus=0, max_restarts=0,
                                              label_selector={"ray.io/node-id": node.node_id}).remote(
                "local-sync", node.name)
        ray.get([a.ping.remote() for a in actors.values()], timeout=120)
        costs = []
        for node, _ in usable:
            actor = actors[node.name]
            dispatch = _median_time(functools.partial(_ping, ray, actor), calls)
            cpu, gpus = _kinds(node)
            costs.append(NodeCost(node.name, cpu, gpus, float(node.labels.get(LABEL_MEMORY, "8")), dispatch))
        links = []
        names = [n.name for n, _ in usable]
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                links.append((a, b, *_link(ray, actors[a], actors[b], costs[names.index(b)].dispatch_s)))
        host = next((n.name for n, head in usable if head), names[0])
        return EngineCosts(str(address or "auto"), host, tuple(costs), tuple(links))
    finally:
        for a in actors.values():
            ray.kill(a)
        ray.shutdown()


def _ping(ray: Any, actor: Any) -> Any:
    return ray.get(actor.ping.remote())


def _link(ray: Any, src: Any, dst: Any, dispatch: float) -> tuple[float, float]:
    """(latency s, bandwidth bytes/s) of moving an object made on src's node to dst's node."""
    def moved(nbytes: int, reps: int) -> float:
        times = []
        for _ in range(reps):
            ref = src.make.remote(nbytes)
            ray.wait([ref], fetch_local=False)
            start = time.perf_counter()
            ray.get(dst.ping.remote(ref))
            times.append(time.perf_counter() - start - dispatch)
        return max(statistics.median(times), 1e-6)

    small, large = moved(SMALL_BYTES, 20), moved(LARGE_BYTES, 5)
    return small, LARGE_BYTES / max(large - small, 1e-6)


def deployment_toml(costs: EngineCosts, *, name: str = "ray-cluster") -> str:
    """The deployment file: measured keys of each device kind (the rest comes from the shipped
    profile, merged key by key), a link per node pair, and the deployment itself."""
    out = [f"# Written by `planrt node tune`: the Ray engine's costs measured on the cluster at {costs.address}.",
           (f"# dispatch_us = the actor round trip measured from the driver + {IREE_DISPATCH_US:g} us of "
           "local IREE dispatch."),
           "schema = 1", ""]
    kinds: dict[str, list[NodeCost]] = {}
    for n in costs.nodes:
        for kind in (n.kind, *n.gpus):
            kinds.setdefault(kind, []).append(n)
    for kind, members in sorted(kinds.items()):
        dispatch = statistics.median(m.dispatch_s for m in members) * 1e6 + IREE_DISPATCH_US
        out += [f'[devices."{kind}"]', f"dispatch_us = {dispatch:.1f}"]
        if not kind.startswith("cuda"):
            out.append(f"memory_gib = {min(m.memory_gib for m in members):.1f}")
        out.append("")
    devices, links = [], []
    for n in costs.nodes:
        devices.append(f'"{n.name}" = "{n.kind}"')
        for i, gpu in enumerate(n.gpus):
            devices.append(f'"{n.name}-gpu{i}" = "{gpu}"')
            links.append(f'{{ a = "{n.name}", b = "{n.name}-gpu{i}", link = "pcie4-x16" }}')
    for a, b, lat, bw in costs.links:
        out += [f'[links."ray-{a}-{b}"]', f"bandwidth_gbs = {bw / 1e9:.4f}", f"latency_us = {lat * 1e6:.1f}", ""]
        links.append(f'{{ a = "{a}", b = "{b}", link = "ray-{a}-{b}" }}')
    out += [f'[deployments."{name}"]', f'description = "Ray cluster at {costs.address}, measured by planrt node tune"',
            "pue = 1.0", f'host = "{costs.host}"', f"devices = {{ {', '.join(devices)} }}",
            f"links = [{', '.join(links)}]", ""]
    return "\n".join(out)


def write_deployment(costs: EngineCosts, path: str | Path, *, name: str = "ray-cluster") -> Path:
    out = Path(path)
    out.write_text(deployment_toml(costs, name=name))
    return out
