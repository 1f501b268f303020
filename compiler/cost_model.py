"""The cost model: a roofline over device profiles, and a seam for measured corrections."""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

import numpy as np
from planc.compiler.profiles import (
    SCHEMA,
    Deployment,
    DeviceInstance,
    DeviceSpec,
    Link,
    Profile,
    ProfileError,
)
from planc.dsl.ast import DType

__all__ = [
    "DTYPES",
    "BatchCostModel",
    "ComputeFacts",
    "CostModel",
    "DeviceFit",
    "RooflineModel",
    "TunedModel",
    "Tuning",
    "load_tuning",
    "merge_facts",
]

# Every dtype a task can compute in, in a fixed order (a merged group's `mix` follows it).
DTYPES: tuple[str, ...] = tuple(d.value for d in DType)


@dataclass(frozen=True, slots=True)
class ComputeFacts:
    """What the roofline needs to know about a compute task or merged group.

    `flops` counts operations (an FMA is 2) in `dtype`; `bytes_accessed` is the memory
    traffic (operands read, results written); `dispatches` the kernel launches it takes;
    `key` names it for measured overrides (see TunedModel). A merged group computing in
    several dtypes lists its flops per dtype in `mix` (then `flops` is their sum and
    `dtype` the one with the most).
    """

    flops: float
    bytes_accessed: float
    dtype: str
    dispatches: int = 1
    key: str | None = None
    mix: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.dtype, DType):
            object.__setattr__(self, "dtype", self.dtype.value)
        if self.dtype not in DTYPES:
            raise ValueError(f"unknown dtype '{self.dtype}', expected one of: {', '.join(DTYPES)}")
        for name in ("flops", "bytes_accessed"):
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
    return _mixed(by_dtype, traffic, members[0].dtype, key)


def _mixed(by_dtype: Mapping[str, float], traffic: float, default_dtype: str, key: str | None) -> ComputeFacts:
    flops = sum(by_dtype.values())
    dtype = max(DTYPES, key=lambda d: (by_dtype.get(d, 0.0), -DTYPES.index(d))) if flops > 0 else default_dtype
    mix = tuple((dt, by_dtype[dt]) for dt in DTYPES if by_dtype.get(dt, 0.0) > 0)
    return ComputeFacts(flops, traffic, dtype, 1, key, mix if len(mix) > 1 else ())


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


@dataclass(frozen=True, slots=True)
class DeviceFit:
    """Roofline parameters of one device kind (or instance) fitted to measurements by
    `planc tune`, in SI units: FLOP/s per dtype, bytes/s, seconds per dispatch. They
    replace the profile's numbers for that device (dtypes not listed keep the profile's).

    `serial` is the fraction of the shorter of compute and memory time that adds to the
    longer: 0 is the roofline (they overlap perfectly), 1 their sum (a module whose
    dispatches each either compute or move memory, one after the other)."""

    peak_flops: Mapping[str, float]
    mem_bandwidth: float
    dispatch_overhead: float
    serial: float = 0.0

    def apply(self, spec: DeviceSpec) -> DeviceSpec:
        """`spec` with the fitted numbers."""
        return replace(spec, peak_flops=MappingProxyType({**spec.peak_flops, **self.peak_flops}),
                       mem_bandwidth=self.mem_bandwidth, dispatch_overhead=self.dispatch_overhead)


@dataclass(frozen=True, slots=True)
class Tuning:
    """Measured corrections to a base model, as `planc tune` writes them.

    `scale` multiplies the base model's compute times on a device (keyed by instance name
    or device kind; the instance wins). `compute` holds measured seconds by task or module
    key, then by instance name or kind. `tools` holds measured seconds by tool key.
    `devices` holds fitted roofline parameters by device kind or instance name (the
    instance wins). `facts` holds, by compute key, the (flops, bytes accessed) the
    measurement in `compute` was taken for: a task with that key but other facts (a
    different group that got the same name) is priced by the model, not the measurement.
    """

    scale: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    compute: Mapping[str, Mapping[str, float]] = field(default_factory=lambda: MappingProxyType({}))
    tools: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    source: str = "<memory>"
    devices: Mapping[str, DeviceFit] = field(default_factory=lambda: MappingProxyType({}))
    facts: Mapping[str, tuple[float, float]] = field(default_factory=lambda: MappingProxyType({}))

    def to_toml(self) -> str:
        """The tuning file that load_tuning reads back to an equal Tuning."""
        lines = [f"schema = {SCHEMA}", "", "[scale]"]
        lines += [f"{json.dumps(k)} = {_toml_float(v)}" for k, v in sorted(self.scale.items())]
        lines += ["", "[tools]"] + [f"{json.dumps(k)} = {_toml_float(v)}" for k, v in sorted(self.tools.items())]
        for key, per_device in sorted(self.compute.items()):
            lines += ["", f"[compute.{json.dumps(key)}]"]
            lines += [f"{json.dumps(d)} = {_toml_float(v)}" for d, v in sorted(per_device.items())]
        for name, fit in sorted(self.devices.items()):
            peaks = ", ".join(f"{dt} = {_toml_float(v / 1e9)}" for dt, v in sorted(fit.peak_flops.items()))
            lines += ["", f"[devices.{json.dumps(name)}]", f"peak_gflops = {{ {peaks} }}",
                      f"mem_bandwidth_gbs = {_toml_float(fit.mem_bandwidth / 1e9)}",
                      f"dispatch_us = {_toml_float(fit.dispatch_overhead * 1e6)}",
                      f"serial = {_toml_float(fit.serial)}"]
        for key, (flops, nbytes) in sorted(self.facts.items()):
            lines += ["", f"[facts.{json.dumps(key)}]", f"flops = {_toml_float(flops)}",
                      f"bytes_accessed = {_toml_float(nbytes)}"]
        return "\n".join(lines) + "\n"


def _toml_float(v: float) -> str:
    if not math.isfinite(v):
        raise ValueError(f"tuning values must be finite, found {v!r}")
    return repr(float(v))


def load_tuning(path: str | Path) -> Tuning:
    """Reads a tuning file (schema 1: [scale], [tools], [compute.KEY] tables of seconds;
    [devices.KIND] fitted peak_gflops / mem_bandwidth_gbs / dispatch_us; [facts.KEY])."""
    file = str(path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ProfileError(file, "-", "no such file") from None
    except tomllib.TOMLDecodeError as e:
        raise ProfileError(file, "-", f"not valid TOML: {e}") from None
    if data.get("schema") != SCHEMA:
        raise ProfileError(file, "schema", f"unsupported or missing schema {data.get('schema')!r}: "
                           f"this planc reads schema {SCHEMA}")
    for key in data:
        if key not in _TUNING_KEYS:
            raise ProfileError(file, key, f"unknown key (expected one of: {', '.join(_TUNING_KEYS)})")
    compute = {k: _floats(v, f"compute.{k}", file) for k, v in _mapping(data, "compute", file).items()}
    devices = {k: _device_fit(v, f"devices.{k}", file) for k, v in _mapping(data, "devices", file).items()}
    facts = {k: _facts_guard(v, f"facts.{k}", file) for k, v in _mapping(data, "facts", file).items()}
    return Tuning(MappingProxyType(_floats(data.get("scale", {}), "scale", file)),
                  MappingProxyType({k: MappingProxyType(v) for k, v in compute.items()}),
                  MappingProxyType(_floats(data.get("tools", {}), "tools", file)), file,
                  MappingProxyType(devices), MappingProxyType(facts))


_TUNING_KEYS = ("schema", "scale", "compute", "tools", "devices", "facts")
_FIT_KEYS = ("peak_gflops", "mem_bandwidth_gbs", "dispatch_us", "serial")


def _device_fit(t: Any, where: str, file: str) -> DeviceFit:
    if not isinstance(t, dict):
        raise ProfileError(file, where, f"expected a table of {', '.join(_FIT_KEYS)}, found {t!r}")
    for key in t:
        if key not in _FIT_KEYS:
            raise ProfileError(file, f"{where}.{key}",
                               f"unknown key (expected one of: {', '.join(_FIT_KEYS)})")
    for key in _FIT_KEYS[:3]:
        if key not in t:
            raise ProfileError(file, f"{where}.{key}", "missing")
    peaks = _floats(t["peak_gflops"], f"{where}.peak_gflops", file)
    for dt, v in peaks.items():
        if dt not in DTYPES or v <= 0:
            raise ProfileError(file, f"{where}.peak_gflops.{dt}",
                               f"expected a known dtype ({', '.join(DTYPES)}) with a number > 0")
    scalars = _floats({k: t[k] for k in _FIT_KEYS[1:] if k in t}, where, file)
    if scalars["mem_bandwidth_gbs"] <= 0:
        raise ProfileError(file, f"{where}.mem_bandwidth_gbs", "expected a number > 0")
    if scalars.get("serial", 0.0) > 1:
        raise ProfileError(file, f"{where}.serial",
                           f"expected a fraction from 0 to 1, found {scalars['serial']}")
    return DeviceFit(MappingProxyType({dt: v * 1e9 for dt, v in peaks.items()}),
                     scalars["mem_bandwidth_gbs"] * 1e9, scalars["dispatch_us"] * 1e-6,
                     scalars.get("serial", 0.0))


def _facts_guard(t: Any, where: str, file: str) -> tuple[float, float]:
    numbers = _floats(t, where, file)
    for key in numbers:
        if key not in ("flops", "bytes_accessed"):
            raise ProfileError(file, f"{where}.{key}", "unknown key (expected one of: flops, bytes_accessed)")
    if len(numbers) != 2:
        raise ProfileError(file, where, "expected both flops and bytes_accessed")
    return numbers["flops"], numbers["bytes_accessed"]


def _mapping(data: Mapping[str, Any], key: str, file: str) -> Mapping[str, Any]:
    v = data.get(key, {})
    if not isinstance(v, dict):
        raise ProfileError(file, key, f"expected a table, found {v!r}")
    return v


def _floats(t: Any, where: str, file: str) -> dict[str, float]:
    if not isinstance(t, dict):
        raise ProfileError(file, where, f"expected a table of numbers, found {t!r}")
    for k, v in t.items():
        if isinstance(v, bool) or not isinstance(v, int | float) or not (math.isfinite(v) and v >= 0):
            raise ProfileError(file, f"{where}.{k}", f"expected a number >= 0, found {v!r}")
    return {k: float(v) for k, v in t.items()}


class TunedModel:
    """A base cost model with measured corrections (fitted device parameters, per-device
    scale, per-key seconds)."""

    def __init__(self, base: CostModel, tuning: Tuning) -> None:
        self.base = base
        self.tuning = tuning
        self._roofline: CostModel = _fitted(base, tuning)

    @property
    def deployment(self) -> Deployment:
        return self.base.deployment

    def _lookup(self, table: Mapping[str, float], device: str) -> float | None:
        if device in table:
            return table[device]
        return table.get(self.base.deployment.device(device).kind)

    def _scale(self, device: str) -> float:
        scale = self._lookup(self.tuning.scale, device)
        return 1.0 if scale is None else scale

    def _measured(self, facts: ComputeFacts) -> bool:
        if facts.key is None or facts.key not in self.tuning.compute:
            return False
        guard = self.tuning.facts.get(facts.key)
        return guard is None or (math.isclose(guard[0], facts.flops, rel_tol=1e-3, abs_tol=1.0)
                                 and math.isclose(guard[1], facts.bytes_accessed, rel_tol=1e-3, abs_tol=1.0))

    def compute_time(self, facts: ComputeFacts, device: str) -> float:
        if self._measured(facts):
            assert facts.key is not None
            measured = self._lookup(self.tuning.compute[facts.key], device)
            if measured is not None:
                return measured
        return self._roofline.compute_time(facts, device) * self._scale(device)

    def compute_times(self, flops: np.ndarray, bytes_accessed: np.ndarray, dtypes: Sequence[str],
                      device: str) -> np.ndarray:
        if isinstance(self._roofline, BatchCostModel):
            return self._roofline.compute_times(flops, bytes_accessed, dtypes, device) * self._scale(device)
        return np.array([
            self.compute_time(_mixed(dict(zip(dtypes, map(float, row))), float(nbytes), dtypes[0], None), device)
            for row, nbytes in zip(flops, bytes_accessed)
        ])

    def transfer_time(self, nbytes: float, src_device: str, dst_device: str) -> float:
        return self.base.transfer_time(nbytes, src_device, dst_device)

    def tool_time(self, declared_s: float | None, *, key: str | None = None) -> float:
        if key is not None and key in self.tuning.tools:
            return self.tuning.tools[key]
        return self.base.tool_time(declared_s, key=key)

    def energy(self, seconds: float, device: str) -> float:
        return self.base.energy(seconds, device)

    def idle_energy(self, seconds: float, device: str) -> float:
        return self.base.idle_energy(seconds, device)

    def describe(self) -> dict[str, Any]:
        return {"model": "tuned", "tuning": Path(self.tuning.source).name, "base": self.base.describe()}


def _fitted(base: CostModel, tuning: Tuning) -> CostModel:
    """The base roofline with fitted device parameters (by instance name, else kind) in place
    of the profile's; the base itself when nothing was fitted or it is not a roofline."""
    if not tuning.devices or not isinstance(base, RooflineModel):
        return base
    dep = base.deployment
    instances, serial = [], {}
    for d in dep.devices:
        fit = tuning.devices.get(d.name) or tuning.devices.get(d.kind)
        instances.append(DeviceInstance(d.name, fit.apply(d.spec)) if fit is not None else d)
        serial[d.name] = fit.serial if fit is not None else 0.0
    return _FittedRoofline(base.profile, replace(dep, devices=tuple(instances)), serial)


class _FittedRoofline(RooflineModel):
    """The roofline over fitted specs, where a fraction `serial[device]` of the shorter of
    compute and memory time does not overlap the longer (DeviceFit.serial)."""

    def __init__(self, profile: Profile, deployment: Deployment, serial: Mapping[str, float]) -> None:
        super().__init__(profile, deployment)
        self._serial = dict(serial)

    def compute_time(self, facts: ComputeFacts, device: str) -> float:
        spec = self.spec(device)
        compute = sum(f / spec.peak(dt) for dt, f in facts.by_dtype())
        memory = facts.bytes_accessed / spec.mem_bandwidth
        return (spec.dispatch_overhead * facts.dispatches + max(compute, memory)
                + self._serial.get(device, 0.0) * min(compute, memory))

    def compute_times(self, flops: np.ndarray, bytes_accessed: np.ndarray, dtypes: Sequence[str],
                      device: str) -> np.ndarray:
        spec = self.spec(device)
        compute = (flops / np.array([spec.peak(d) for d in dtypes])).sum(axis=-1)
        memory = bytes_accessed / spec.mem_bandwidth
        return (spec.dispatch_overhead + np.maximum(compute, memory)
                + self._serial.get(device, 0.0) * np.minimum(compute, memory))
