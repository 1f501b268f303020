"""Fitting the roofline to measured module times: peak, bandwidth and dispatch per device kind."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np
from planc.compiler.cost_model import ComputeFacts, DeviceFit, RooflineModel, Tuning
from planc.compiler.profiles import Deployment, DeviceInstance, DeviceSpec, Profile

if TYPE_CHECKING:
    from planc.compiler.tune import Measurement

__all__ = [
    "FitResult", "KindFit", "base_spec", "direct", "fit", "fit_spec", "kendall_tau", "leave_one_out", "mape",
    "predict",
]

# The fit pulls each parameter (in log space) toward the profile's value with this weight,
# so that a parameter the measurements cannot see (bandwidth when every module is compute
# bound) stays where the datasheet put it rather than drifting.
PRIOR = 0.01
# Residuals beyond this (in log time, ~20 %) count linearly: one module disturbed by the
# host's other work must not drag the device's numbers.
ROBUST_SCALE = 0.2
MIN_MODULES = 3


@dataclass(frozen=True, slots=True)
class KindFit:
    """One device kind's roofline before and after fitting to `modules` measured modules;
    `rms_log` is the root mean square of log(predicted / measured) after the fit."""

    kind: str
    before: DeviceSpec
    after: DeviceSpec
    modules: int
    rms_log: float


@dataclass(frozen=True, slots=True)
class FitResult:
    """The fitted kinds, the kinds left alone (with why), and the tuned profile to save."""

    kinds: tuple[KindFit, ...]
    skipped: tuple[tuple[str, str], ...]
    tuning: Tuning

    def spec(self, kind: str) -> DeviceSpec | None:
        """The fitted spec of `kind`, None when it was not fitted."""
        return next((k.after for k in self.kinds if k.kind == kind), None)


def predict(facts: ComputeFacts, spec: DeviceSpec) -> float:
    """Seconds the cost model gives `facts` on a device of kind `spec` (RooflineModel's formula)."""
    dep = Deployment("tune", (DeviceInstance("dev", spec),), "dev")
    return RooflineModel(_EMPTY_PROFILE, dep).compute_time(facts, "dev")


_EMPTY_PROFILE = Profile(1, MappingProxyType({}), MappingProxyType({}), MappingProxyType({}), 0.1, ())


def _arrays(ms: Sequence[Measurement], spec: DeviceSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    compute = np.array([sum(f / spec.peak(dt) for dt, f in m.facts.by_dtype()) for m in ms])
    nbytes = np.array([m.facts.bytes_accessed for m in ms])
    dispatches = np.array([max(1, m.facts.dispatches) for m in ms], dtype=float)
    return compute, nbytes, dispatches


def fit_spec(ms: Sequence[Measurement], spec: DeviceSpec) -> tuple[DeviceSpec, float]:
    """Least squares on log time of t = dispatch + max(flops / (s * peak), bytes / bandwidth)
    over (s, bandwidth, dispatch): every peak is scaled by one factor s, keeping the
    profile's ratios between dtypes. Returns the fitted spec and its rms log error."""
    from scipy.optimize import least_squares

    compute, nbytes, dispatches = _arrays(ms, spec)
    y = np.log([m.median for m in ms])
    fastest = float(min(m.median for m in ms))
    lo = np.log([1e-9, 1e5, 1e-9])
    hi = np.log([1e9, 1e15, max(fastest, 2e-9)])
    prior = np.clip(np.log([1.0, spec.mem_bandwidth, max(spec.dispatch_overhead, 1e-7)]), lo, hi)

    def log_time(theta: np.ndarray) -> np.ndarray:
        s, bandwidth, dispatch = np.exp(theta)
        return np.log(dispatch * dispatches + np.maximum(compute / s, nbytes / bandwidth))

    def residual(theta: np.ndarray) -> np.ndarray:
        return np.concatenate([log_time(theta) - y, PRIOR * (theta - prior)])

    times = np.exp(y)
    data_start = np.log([max(float(np.max(compute / times)), 1e-9), max(float(np.max(nbytes / times)), 1e5),
                         0.5 * fastest])
    best = None
    for start in (prior, data_start):
        x0 = np.clip(start, lo + 1e-9, hi - 1e-9)
        res = least_squares(residual, x0, bounds=(lo, hi), loss="soft_l1", f_scale=ROBUST_SCALE)
        if best is None or res.cost < best.cost:
            best = res
    assert best is not None
    s, bandwidth, dispatch = (float(v) for v in np.exp(best.x))
    peaks = MappingProxyType({dt: v * s for dt, v in spec.peak_flops.items()})
    fitted = replace(spec, peak_flops=peaks, mem_bandwidth=bandwidth, dispatch_overhead=dispatch)
    rms = float(np.sqrt(np.mean((log_time(best.x) - y) ** 2)))
    return fitted, rms


def direct(measurements: Iterable[Measurement]) -> list[Measurement]:
    """The measurements the fit uses: a module timed by planc tune drops its trace measurement."""
    return [m for ms in _by_kind(measurements).values() for m in ms]


def _by_kind(measurements: Iterable[Measurement]) -> dict[str, list[Measurement]]:
    """Measurements per target; a module timed by planc tune drops its trace measurement."""
    chosen: dict[tuple[str, str], Measurement] = {}
    for m in measurements:
        key = (m.module, m.target)
        if key not in chosen or (chosen[key].source == "trace" and m.source == "bench"):
            chosen[key] = m
    out: dict[str, list[Measurement]] = {}
    for (_, target), m in sorted(chosen.items()):
        out.setdefault(target, []).append(m)
    return out


def base_spec(profile: Profile, kind: str, previous: Tuning | None = None) -> DeviceSpec | None:
    """The spec of `kind` the compiler used: the profile's, with a previous tuning's fit applied."""
    spec = profile.devices.get(kind)
    if spec is not None and previous is not None and kind in previous.devices:
        spec = previous.devices[kind].apply(spec)
    return spec


def fit(measurements: Iterable[Measurement], profile: Profile, *, tools: Mapping[str, float] | None = None,
        overrides: bool = True, previous: Tuning | None = None, min_modules: int = MIN_MODULES) -> FitResult:
    """Fits every device kind with at least `min_modules` measured modules and returns the
    tuned profile: fitted device parameters, each measured module's median seconds per
    kind (with the facts it was measured for) when `overrides`, and tool latencies.
    Probe measurements inform the fit only. Entries of `previous` not measured again are kept."""
    kinds, skipped = [], []
    compute: dict[str, dict[str, float]] = {k: dict(v) for k, v in (previous.compute if previous else {}).items()}
    facts: dict[str, tuple[float, float]] = dict(previous.facts) if previous else {}
    devices: dict[str, DeviceFit] = dict(previous.devices) if previous else {}
    for kind, ms in _by_kind(measurements).items():
        if overrides:
            for m in ms:
                if m.source == "probe":
                    continue
                compute.setdefault(m.module, {})[kind] = m.median
                facts[m.module] = (m.facts.flops, m.facts.bytes_accessed)
        spec = base_spec(profile, kind, previous)
        if spec is None:
            skipped.append((kind, "not a device kind of the profile"))
            continue
        if len(ms) < min_modules:
            skipped.append((kind, f"{len(ms)} module(s) measured, {min_modules} needed for a fit"))
            continue
        after, rms = fit_spec(ms, spec)
        kinds.append(KindFit(kind, spec, after, len(ms), rms))
        devices[kind] = DeviceFit(after.peak_flops, after.mem_bandwidth, after.dispatch_overhead)
    tuning = Tuning(
        scale=previous.scale if previous else MappingProxyType({}),
        compute=MappingProxyType({k: MappingProxyType(v) for k, v in compute.items()}),
        tools=MappingProxyType({**(previous.tools if previous else {}), **(tools or {})}),
        devices=MappingProxyType(devices), facts=MappingProxyType(facts))
    return FitResult(tuple(kinds), tuple(skipped), tuning)


def leave_one_out(measurements: Iterable[Measurement], profile: Profile, *,
                  previous: Tuning | None = None, min_modules: int = MIN_MODULES) -> dict[tuple[str, str], float]:
    """For every measured (module, kind) of the plan: the fitted roofline's prediction when
    that module was left out of the fit (probes always stay in: they are what pins the
    parameters). Kinds with too few modules to fit without one are left out."""
    out: dict[tuple[str, str], float] = {}
    for kind, ms in _by_kind(measurements).items():
        spec = base_spec(profile, kind, previous)
        if spec is None or len(ms) - 1 < min_modules:
            continue
        for i, m in enumerate(ms):
            if m.source == "probe":
                continue
            fitted, _ = fit_spec(ms[:i] + ms[i + 1:], spec)
            out[(m.module, kind)] = predict(m.facts, fitted)
    return out


def mape(predicted: Sequence[float], measured: Sequence[float]) -> float:
    """Mean absolute percentage error, as a fraction (0.1 is 10 %)."""
    if len(measured) == 0:
        return math.nan
    p, m = np.asarray(predicted, dtype=float), np.asarray(measured, dtype=float)
    return float(np.mean(np.abs(p - m) / m))


def kendall_tau(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall's tau-b rank correlation (ties in either sequence handled); nan below 2 items."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(x) < 2:
        return math.nan
    i, j = np.triu_indices(len(x), k=1)
    sx, sy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
    denom = math.sqrt(float(np.sum(sx != 0)) * float(np.sum(sy != 0)))
    return float(np.sum(sx * sy) / denom) if denom > 0 else math.nan
