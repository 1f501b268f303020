"""The cost model: a roofline over device profiles, and a seam for measured corrections."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from planc.compiler.costs.profiles import (
    SCHEMA,
    Deployment,
    DeviceSpec,
    Link,
    Profile,
)
from planc.dsl.ast import DType
from planc.runtime.contract.dtypes import DTYPE_NAMES

__all__ = [
    "DTYPES",
    "HEAVY_FLOPS",
    "BatchCostModel",
    "ComputeFacts",
    "CostModel",
    "RooflineModel",
    "merge_facts",
]

# Groups above this many flops run on IREE's multi-threaded local-task driver (unless a tuned
# profile carries this host's measured crossover, `planc tune`); below it the
# thread pool's hand-off costs more than it gives, so local-sync (the caller's thread) wins.
# Measured on a 2-core AVX-512 host (tanh(a @ b), n x n): n=256 (34 MFLOP) local-sync 0.18 ms
# vs local-task 0.70 ms; n=512 (268 MFLOP) 1.56 ms vs 0.85 ms; n=1024 28.2 ms vs 15.3 ms.
HEAVY_FLOPS = 1e8

# Every dtype a task can compute in, in a fixed order (a merged group's `mix` follows it).
DTYPES: tuple[str, ...] = DTYPE_NAMES


@dataclass(frozen=True, slots=True)
class ComputeFacts:
    """What the roofline needs to know about a compute task or merged group.

    `flops` counts operations (an FMA is 2) in `dtype`; `bytes_accessed` is the memory
    traffic (operands read, results written); `dispatches` the kernel launches it takes;
    `key` names it for measured overrides (see TunedModel). A merged group computing in
    several dtypes lists its flops per dtype in `mix` (then `flops` is their sum and
    `dtype` the one with the most). `working_set` is the bytes of every tensor it touches
    (0: unknown, taken to be `bytes_accessed`), which a fitted two-level memory model
    compares with the last-level cache; `vector_flops` the part of `flops` outside matmuls
    and convolutions, which a fitted model may run at a lower rate.
    """

    flops: float
    bytes_accessed: float
    dtype: str
    dispatches: int = 1
    key: str | None = None
    mix: tuple[tuple[str, float], ...] = ()
    working_set: float = 0.0
    vector_flops: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.dtype, DType):
            object.__setattr__(self, "dtype", self.dtype.value)
        if self.dtype not in DTYPES:
            raise ValueError(f"unknown dtype '{self.dtype}', expected one of: {', '.join(DTYPES)}")
        for name in ("flops", "bytes_accessed", "working_set", "vector_flops"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
                raise ValueError(f"ComputeFacts.{name} must be a finite number >= 0, found {v!r}")
        if not isinstance(self.dispatches, int) or self.dispatches < 0:
            raise ValueError(f"ComputeFacts.dispatches must be an integer >= 0, found {self.dispatches!r}")
        if self.mix:
            if any(dt not in DTYPES or not f >= 0 for dt, f in self.mix):
                raise ValueError(f"ComputeFacts.mix must pair known dtypes with flops >= 0, found {self.mix!r}")
            if not math.isclose(sum(f for _, f in self.mix), self.flops, rel_tol=1e-9, abs_tol=1e-9):
                raise ValueError(f"ComputeFacts.mix sums to {sum(f for _, f in self.mix)}, not flops={self.flops}")

    def by_dtype(self) -> tuple[tuple[str, float], ...]:
        """(dtype, flops) pairs: `mix`, or the one dtype."""
        return self.mix or ((self.dtype, self.flops),)


def merge_facts(members: Sequence[ComputeFacts], internal_bytes: float = 0.0, *,
                key: str | None = None) -> ComputeFacts:
    """The facts of one module made of `members`: one dispatch, summed flops, and the
    summed memory traffic less `internal_bytes`, the traffic of intermediates that stay
    on the device (never below zero). Flops keep their dtypes (`mix` when several); its
    dtype is the one carrying the most flops (ties: first in DTYPES). One member and no
    internal bytes gives the member back.
    """
    if not members:
        raise ValueError("merge_facts needs at least one member")
    if internal_bytes < 0:
        raise ValueError(f"internal_bytes must be >= 0, found {internal_bytes!r}")
    if len(members) == 1 and internal_bytes == 0 and key is None:
        return members[0]
    by_dtype = dict.fromkeys(DTYPES, 0.0)
    for m in members:
        for dt, f in m.by_dtype():
            by_dtype[dt] += f
    traffic = max(0.0, sum(m.bytes_accessed for m in members) - internal_bytes)
    # An intermediate shows in two members' working sets (written, then read): count it once.
    ws = max(0.0, sum(m.working_set for m in members) - internal_bytes / 2) if all(
        m.working_set > 0 for m in members) else 0.0
    out = _mixed(by_dtype, traffic, members[0].dtype, key, ws)
    vector = sum(m.vector_flops for m in members)
    return replace(out, vector_flops=min(vector, out.flops)) if vector else out


def _mixed(by_dtype: Mapping[str, float], traffic: float, default_dtype: str, key: str | None,
           working_set: float = 0.0) -> ComputeFacts:
    flops = sum(by_dtype.values())
    dtype = max(DTYPES, key=lambda d: (by_dtype.get(d, 0.0), -DTYPES.index(d))) if flops > 0 else default_dtype
    mix = tuple((dt, by_dtype[dt]) for dt in DTYPES if by_dtype.get(dt, 0.0) > 0)
    return ComputeFacts(flops, traffic, dtype, 1, key, mix if len(mix) > 1 else (), working_set)


@runtime_checkable
class CostModel(Protocol):
    """Seconds and joules for tasks, transfers and tools on one deployment's devices.

    Devices are named by their instance names in the deployment (`cpu0`, `gpu0`).
    """

    @property
    def deployment(self) -> Deployment: ...

    def compute_time(self, facts: ComputeFacts, device: str) -> float:
        """Seconds to run a compute task or merged group on `device`."""
        ...

    def transfer_time(self, nbytes: float, src_device: str, dst_device: str) -> float:
        """Seconds to move `nbytes` from one device to another; 0 on the same device."""
        ...

    def tool_time(self, declared_s: float | None, *, key: str | None = None) -> float:
        """Seconds a tool takes: the measurement for `key`, else `declared_s`, else the default."""
        ...

    def energy(self, seconds: float, device: str) -> float:
        """Joules drawn from the grid by `device` busy for `seconds` (busy power x time x PUE)."""
        ...

    def idle_energy(self, seconds: float, device: str) -> float:
        """Joules drawn by `device` idle for `seconds` (idle power x time x PUE)."""
        ...

    def describe(self) -> dict[str, Any]:
        """A JSON-able description for the bundle manifest (no absolute paths)."""
        ...


@runtime_checkable
class BatchCostModel(CostModel, Protocol):
    """A cost model that also prices many one-dispatch groups at once (the merge DP's fast path)."""

    def compute_times(self, flops: np.ndarray, bytes_accessed: np.ndarray, dtypes: Sequence[str],
                      device: str) -> np.ndarray:
        """compute_time of one-dispatch groups: group k does flops[k, j] operations in dtypes[j]
        and moves bytes_accessed[k] bytes."""
        ...


class RooflineModel:
    """dispatch overhead x dispatches + max(sum of flops / peak[dtype], bytes / bandwidth), per device."""

    def __init__(self, profile: Profile, deployment: Deployment | str | Path) -> None:
        if isinstance(deployment, Deployment):
            self.profile, self._deployment = profile, deployment
        else:  # a name, or a user file whose devices and defaults then apply too
            self.profile, self._deployment = profile.select(deployment)
        self._specs: dict[str, DeviceSpec] = {d.name: d.spec for d in self._deployment.devices}
        self._routes: dict[tuple[str, str], tuple[Link, ...]] = {}

    @property
    def deployment(self) -> Deployment:
        return self._deployment

    def spec(self, device: str) -> DeviceSpec:
        """The device kind of instance `device` (raises ProfileError naming the known ones)."""
        spec = self._specs.get(device)
        return spec if spec is not None else self._deployment.device(device).spec

    def compute_time(self, facts: ComputeFacts, device: str) -> float:
        spec = self.spec(device)
        compute = sum(f / spec.peak(dt) for dt, f in facts.by_dtype())
        return spec.dispatch_overhead * facts.dispatches + max(compute, facts.bytes_accessed / spec.mem_bandwidth)

    def compute_times(self, flops: np.ndarray, bytes_accessed: np.ndarray, dtypes: Sequence[str],
                      device: str) -> np.ndarray:
        spec = self.spec(device)
        compute = (flops / np.array([spec.peak(d) for d in dtypes])).sum(axis=-1)
        return spec.dispatch_overhead + np.maximum(compute, bytes_accessed / spec.mem_bandwidth)

    def transfer_time(self, nbytes: float, src_device: str, dst_device: str) -> float:
        if nbytes < 0:
            raise ValueError(f"transfer of {nbytes!r} bytes: must be >= 0")
        if src_device == dst_device:
            self.spec(src_device)
            return 0.0
        route = self._routes.get((src_device, dst_device))
        if route is None:
            route = self._routes[(src_device, dst_device)] = self._deployment.route(src_device, dst_device)
        return sum(link.time(nbytes) for link in route)

    def tool_time(self, declared_s: float | None, *, key: str | None = None) -> float:
        if declared_s is None:
            return self.profile.tool_time_s
        if not (math.isfinite(declared_s) and declared_s >= 0):
            raise ValueError(f"declared tool time must be >= 0 seconds, found {declared_s!r}")
        return float(declared_s)

    def energy(self, seconds: float, device: str) -> float:
        return self.spec(device).power_busy_w * seconds * self._deployment.pue

    def idle_energy(self, seconds: float, device: str) -> float:
        return self.spec(device).power_idle_w * seconds * self._deployment.pue

    def describe(self) -> dict[str, Any]:
        return {
            "model": "roofline",
            "schema": SCHEMA,
            "deployment": self._deployment.name,
            "pue": self._deployment.pue,
            "profiles": [Path(s).name for s in self.profile.sources],
            "devices": {d.name: d.kind for d in self._deployment.devices},
        }
