"""Measured corrections to the roofline: fitted device parameters and per-module times (`planc tune`)."""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
from planc.compiler.costs.formula import module_time
from planc.compiler.costs.model import DTYPES, BatchCostModel, ComputeFacts, CostModel, RooflineModel, _mixed
from planc.compiler.costs.profiles import (
    SCHEMA,
    Deployment,
    DeviceInstance,
    DeviceSpec,
    Profile,
    ProfileError,
)

__all__ = ["DeviceFit", "TunedModel", "Tuning", "load_tuning"]


@dataclass(frozen=True, slots=True)
class DeviceFit:
    """Roofline parameters of one device kind (or instance) fitted to measurements by
    `planc tune`, in SI units: FLOP/s per dtype, bytes/s, seconds per dispatch. They
    replace the profile's numbers for that device (dtypes not listed keep the profile's).

    `serial` is the fraction of the shorter of compute and memory time that adds to the
    longer: 0 is the roofline (they overlap perfectly), 1 their sum (a module whose
    dispatches each either compute or move memory, one after the other).

    The fuller form (`blend` > 0, see costs.formula): `dispatch_overhead` is the cost of
    one module call and `per_dispatch` that of each IREE dispatch in it; memory streams at
    `cache_bandwidth` for the share of the working set that fits in `llc_bytes` of
    last-level cache, at `mem_bandwidth` for the rest; compute and memory combine as the
    p-norm with p = `blend` (1 their sum, 64 and up their max). `local_task_flops` is the
    size from which IREE's local-task driver beat local-sync on the tuned host (0: not
    measured). `vector_rate` is the fraction of the peak that flops outside matmuls and
    convolutions reach (0: not fitted, the peak)."""

    peak_flops: Mapping[str, float]
    mem_bandwidth: float
    dispatch_overhead: float
    serial: float = 0.0
    per_dispatch: float = 0.0
    cache_bandwidth: float = 0.0
    llc_bytes: float = 0.0
    blend: float = 0.0
    local_task_flops: float = 0.0
    vector_rate: float = 0.0

    def time(self, compute: float, facts: ComputeFacts) -> float:
        """Seconds of `facts` whose compute time at the fitted peaks is `compute` (vector
        flops run at `vector_rate` x the peak, when fitted)."""
        if 0 < self.vector_rate < 1 and facts.vector_flops > 0 and facts.flops > 0:
            compute *= 1.0 + (facts.vector_flops / facts.flops) * (1.0 / self.vector_rate - 1.0)
        return float(module_time(compute, facts.bytes_accessed, facts.working_set, max(1, facts.dispatches),
                                 call=self.dispatch_overhead if self.blend > 0 else 0.0,
                                 per_dispatch=self.per_dispatch if self.blend > 0 else self.dispatch_overhead,
                                 dram_bw=self.mem_bandwidth, cache_bw=self.cache_bandwidth,
                                 llc_bytes=self.llc_bytes, blend=self.blend, serial=self.serial))

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
            lines += [f"{key} = {_toml_float(getattr(fit, attr) * scale)}" for key, (attr, scale) in _FULL.items()
                      if getattr(fit, attr) > 0]
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
# The fuller form's keys: TOML key -> (DeviceFit field, unit scale from SI).
_FULL = {"per_dispatch_us": ("per_dispatch", 1e6), "cache_bandwidth_gbs": ("cache_bandwidth", 1e-9),
         "llc_mb": ("llc_bytes", 1.0 / (1 << 20)), "blend": ("blend", 1.0),
         "local_task_gflop": ("local_task_flops", 1e-9), "vector_rate": ("vector_rate", 1.0)}
_FIT_KEYS = ("peak_gflops", "mem_bandwidth_gbs", "dispatch_us", "serial", *_FULL)


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
    full = {attr: scalars.get(key, 0.0) / scale for key, (attr, scale) in _FULL.items()}
    return DeviceFit(MappingProxyType({dt: v * 1e9 for dt, v in peaks.items()}),
                     scalars["mem_bandwidth_gbs"] * 1e9, scalars["dispatch_us"] * 1e-6,
                     scalars.get("serial", 0.0), **full)


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
    instances, fits = [], {}
    for d in dep.devices:
        fit = tuning.devices.get(d.name) or tuning.devices.get(d.kind)
        instances.append(DeviceInstance(d.name, fit.apply(d.spec)) if fit is not None else d)
        if fit is not None:
            fits[d.name] = fit
    return _FittedRoofline(base.profile, replace(dep, devices=tuple(instances)), fits)


class _FittedRoofline(RooflineModel):
    """The roofline over fitted specs, priced by each device's DeviceFit (costs.formula);
    devices without a fit keep the roofline."""

    def __init__(self, profile: Profile, deployment: Deployment, fits: Mapping[str, DeviceFit]) -> None:
        super().__init__(profile, deployment)
        self._fits = dict(fits)

    def compute_time(self, facts: ComputeFacts, device: str) -> float:
        fit = self._fits.get(device)
        if fit is None:
            return super().compute_time(facts, device)
        spec = self.spec(device)
        return fit.time(sum(f / spec.peak(dt) for dt, f in facts.by_dtype()), facts)

    def compute_times(self, flops: np.ndarray, bytes_accessed: np.ndarray, dtypes: Sequence[str],
                      device: str) -> np.ndarray:
        fit = self._fits.get(device)
        if fit is None:
            return super().compute_times(flops, bytes_accessed, dtypes, device)
        spec = self.spec(device)
        compute = (flops / np.array([spec.peak(d) for d in dtypes])).sum(axis=-1)
        # One dispatch per candidate group; its traffic stands for its working set.
        return module_time(compute, bytes_accessed, bytes_accessed, 1.0,
                           call=fit.dispatch_overhead if fit.blend > 0 else 0.0,
                           per_dispatch=fit.per_dispatch if fit.blend > 0 else fit.dispatch_overhead,
                           dram_bw=fit.mem_bandwidth, cache_bw=fit.cache_bandwidth, llc_bytes=fit.llc_bytes,
                           blend=fit.blend, serial=fit.serial)
