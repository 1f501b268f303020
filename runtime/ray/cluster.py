"""Cluster nodes for the Ray engine: the labels that say what a node can run, and group placement.

`planrt node start` puts a node's capabilities into Ray node labels (`node_labels`); the
Ray engine reads them back (`Node.from_ray`) and places every group of a bundle on a node
that can run one of its variants (`place`). Nothing here imports Ray, so all of it is
testable and usable without the optional extra.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from planc.runtime.host.cpu_features import X86_LEVELS
from planc.runtime.host.detect import KNOWN_TARGETS, CudaDevice, Host, ranked_variants

__all__ = [
    "LABEL_ARCH",
    "LABEL_CUDA_SM",
    "LABEL_FEATURE",
    "LABEL_ISA",
    "LABEL_MEMORY",
    "LABEL_NODE",
    "ClusterError",
    "Node",
    "PlacementError",
    "Slot",
    "cpu_isa",
    "describe_nodes",
    "host_from_labels",
    "node_labels",
    "place",
]

LABEL_NODE = "planc/node"  # the node's planc name; schedules name device instances after it
LABEL_ARCH = "planc/arch"  # x86_64, aarch64, riscv64
LABEL_ISA = "planc/cpu-isa"  # avx512, avx2, sse4.2, x86-64, neon, ...
LABEL_CUDA_SM = "planc/cuda-sm"  # highest compute capability, "80" for sm_80 (absent: no CUDA)
LABEL_CUDA_COUNT = "planc/cuda-devices"
LABEL_MEMORY = "planc/memory-gib"
LABEL_FEATURE = "planc-feature/"  # one label per CPU feature beyond the ISA level: planc-feature/avx512vnni=1

# x86-64 ISA levels by label value, best first (x86-64 psABI levels as LLVM names them).
_X86_ISAS = (("avx512", "x86-64-v4"), ("avx2", "x86-64-v3"), ("sse4.2", "x86-64-v2"))
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$")


class ClusterError(RuntimeError):
    """A problem with the cluster itself (not the plan): unreachable, no capable node, a node lost."""


class PlacementError(ClusterError):
    """No live node can run a group; says what the group needs and what every node has."""


def cpu_isa(host: Host) -> str:
    """The label value for a host's CPU instruction set: its best x86-64 level, `neon`, or the arch."""
    if host.arch == "x86_64":
        for name, level in _X86_ISAS:
            if set(X86_LEVELS[level]) <= host.features:
                return name
        return "x86-64"
    if host.arch == "aarch64":
        return "neon" if "neon" in host.features else "armv8"
    return host.arch


def _isa_features(arch: str, isa: str) -> frozenset[str]:
    if arch == "x86_64":
        level = dict(_X86_ISAS).get(isa)
        return frozenset(X86_LEVELS[level]) if level else frozenset()
    return frozenset({"neon"}) if (arch, isa) == ("aarch64", "neon") else frozenset()


def node_labels(host: Host, name: str, *, memory_bytes: int | None = None) -> dict[str, str]:
    """The Ray node labels that describe `host` (planrt's node start-up sets these)."""
    if not _LABEL_VALUE.match(name):
        raise ValueError(f"node name {name!r} is not a valid label value: letters, digits, '-', '_', '.', "
                         "starting and ending with a letter or digit, at most 63 characters")
    isa = cpu_isa(host)
    labels = {LABEL_NODE: name, LABEL_ARCH: host.arch, LABEL_ISA: isa}
    for feature in sorted(host.features - _isa_features(host.arch, isa)):
        if _LABEL_VALUE.match(feature):
            labels[LABEL_FEATURE + feature] = "1"
    if host.cuda:
        labels[LABEL_CUDA_COUNT] = str(len(host.cuda))
        if host.cuda_sm is not None:
            labels[LABEL_CUDA_SM] = str(host.cuda_sm)
    if memory_bytes is None:
        memory_bytes = _physical_memory()
    if memory_bytes:
        labels[LABEL_MEMORY] = str(max(1, memory_bytes // 2**30))
    return labels


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 0


def host_from_labels(labels: Mapping[str, str]) -> Host | None:
    """The Host a node's planc labels describe; None for a node planrt did not start."""
    arch, isa = labels.get(LABEL_ARCH), labels.get(LABEL_ISA)
    if not arch or not isa:
        return None
    features = set(_isa_features(arch, isa))
    features |= {k[len(LABEL_FEATURE):] for k in labels if k.startswith(LABEL_FEATURE)}
    cuda: tuple[CudaDevice, ...] = ()
    count = int(labels.get(LABEL_CUDA_COUNT, "0") or 0)
    sm = labels.get(LABEL_CUDA_SM)
    cap = (int(sm) // 10, int(sm) % 10) if sm and sm.isdigit() else None
    cuda = tuple(CudaDevice(i, f"cuda:{i}", cap) for i in range(count))
    return Host(arch, frozenset(features), cuda, source="node labels")


@dataclass(frozen=True, slots=True)
class Node:
    """A live Ray node as planrt sees it: its id, planc name, address and capabilities."""

    node_id: str
    name: str
    address: str
    host: Host | None  # None: not started by planrt (no planc labels), never used for placement
    labels: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_ray(cls, info: Mapping[str, Any]) -> Node:
        """From one entry of `ray.nodes()`."""
        labels = dict(info.get("Labels") or {})
        node_id = str(info.get("NodeID", ""))
        return cls(node_id, labels.get(LABEL_NODE) or node_id[:12], str(info.get("NodeManagerAddress", "?")),
                   host_from_labels(labels), labels)

    @property
    def isa(self) -> str:
        return self.labels.get(LABEL_ISA, "?")

    def describe(self) -> str:
        if self.host is None:
            return f"{self.name} ({self.address}): no planc labels (start it with `planrt node start`)"
        extra = sorted(k[len(LABEL_FEATURE):] for k in self.labels if k.startswith(LABEL_FEATURE))
        cuda = f", cuda sm_{self.labels[LABEL_CUDA_SM]}" if LABEL_CUDA_SM in self.labels else ""
        more = f" +{','.join(extra)}" if extra else ""
        return f"{self.name} ({self.address}): {self.host.arch} cpu-isa={self.isa}{more}{cuda}"


@dataclass(frozen=True, slots=True)
class Slot:
    """Where one module runs: a node, a device kind on it (`cpu` or `gpu`) and the variant."""

    module: str
    node: Node
    device: str
    target: str
    driver: str


def describe_nodes(nodes: Iterable[Node]) -> str:
    return "\n".join(f"  {n.describe()}" for n in nodes) or "  (no live nodes)"


def _needs(variants: Mapping[str, Mapping[str, Any]]) -> str:
    return "; ".join(f"{name} ({_requirement(name, variants[name])})" for name in sorted(variants)) or "(no variants)"


def _requirement(name: str, variant: Mapping[str, Any]) -> str:
    """A variant's needs in the labels' terms: `x86_64 cpu-isa=avx512`, `cuda sm_80 or newer`."""
    reqs = variant.get("requires")
    need = set(reqs if reqs is not None else KNOWN_TARGETS.get(name, (0, frozenset()))[1])
    sms = sorted(r for r in need if r.startswith("sm_"))
    if "cuda" in need:
        return f"cuda {sms[0] if sms else ''} or newer".replace("  ", " ")
    arch = next((a for a in ("x86_64", "aarch64", "riscv64") if a in need), None)
    if arch is None:
        return ", ".join(sorted(need)) or "any CPU"
    isa = cpu_isa(Host(arch, frozenset(need - {arch})))
    extra = sorted(need - {arch} - _isa_features(arch, isa))
    return f"{arch} cpu-isa={isa}" + (f" +{','.join(extra)}" if extra else "")


def _runs(node: Node, variants: Mapping[str, Mapping[str, Any]]) -> list[str]:
    return ranked_variants(variants, node.host) if node.host is not None else []


def _slot(module: str, node: Node, target: str, variants: Mapping[str, Mapping[str, Any]]) -> Slot:
    variant = variants[target]
    gpu = "cuda" in (variant.get("requires") or KNOWN_TARGETS.get(target, (0, frozenset()))[1])
    return Slot(module, node, "gpu" if gpu else "cpu", target, variant.get("driver") or "local-sync")


def place(modules: Mapping[str, Mapping[str, Any]], nodes: Sequence[Node],
          schedule: Mapping[str, Any] | None = None, *, only: Iterable[str] | None = None,
          load: Mapping[str, int] | None = None) -> dict[str, Slot]:
    """A node for each module (or each of `only`), from the manifest's `modules` and a schedule.

    The schedule's placement wins where it can: a device instance named like a node's planc
    name (`n1`, or `n1-gpu0` for its GPU) picks that node; else the instance's kind, when it
    is a target, picks a node whose best variant is that target. Otherwise the node with the
    best variant wins, ties going to the node with the fewest groups. Raises PlacementError
    naming the group, what it needs and what every node has.
    """
    placement = (schedule or {}).get("placement", {})
    kinds = (schedule or {}).get("devices", {})
    counts: dict[str, int] = dict(load or {})
    out: dict[str, Slot] = {}
    for module in sorted(only if only is not None else modules):
        variants = modules[module]["variants"]
        able = [(n, runs) for n in nodes if (runs := _runs(n, variants))]
        if not able:
            raise PlacementError(f"no node can run group '{module}': it needs one of: {_needs(variants)}\n"
                                 f"the cluster's nodes:\n{describe_nodes(nodes)}")
        node, target = _choose(able, placement.get(module), kinds, variants, counts)
        counts[node.node_id] = counts.get(node.node_id, 0) + 1
        out[module] = _slot(module, node, target, variants)
    return out


def _choose(able: list[tuple[Node, list[str]]], instance: str | None, kinds: Mapping[str, str],
            variants: Mapping[str, Mapping[str, Any]], counts: Mapping[str, int]) -> tuple[Node, str]:
    if instance:
        base, _, gpu = instance.partition("-gpu")
        for node, runs in able:
            if node.name == instance or (gpu.isdigit() and node.name == base):
                want_gpu = gpu.isdigit()
                pick = [t for t in runs if (_slot("", node, t, variants).device == "gpu") == want_gpu]
                return node, (pick or runs)[0]
        kind = kinds.get(instance)
        exact = [(n, r) for n, r in able if r[0] == kind]
        if exact:
            node, _ = min(exact, key=lambda nr: (counts.get(nr[0].node_id, 0), nr[0].name))
            return node, str(kind)
    node, runs = min(able, key=lambda nr: (-_rank(nr[1][0], variants), counts.get(nr[0].node_id, 0), nr[0].name))
    return node, runs[0]


def _rank(target: str, variants: Mapping[str, Mapping[str, Any]]) -> int:
    rank = variants[target].get("rank")
    return int(rank) if rank is not None else KNOWN_TARGETS.get(target, (0, frozenset()))[0]
