"""Fitting the roofline to measured module times: peak, bandwidth, dispatch and overlap per device kind."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType

import numpy as np
from planc.compiler.costs.formula import combination_name
from planc.compiler.costs.model import ComputeFacts
from planc.compiler.costs.profiles import DeviceSpec, Profile
from planc.compiler.costs.tuned_model import DeviceFit, Tuning
from planc.compiler.tuning.cases import Measurement
from planc.compiler.tuning.kinds import KindModel

__all__ = [
    "FitResult", "KindFit", "KindModel", "base_model", "direct", "fit", "fit_kind", "kendall_tau",
    "leave_one_out", "mape", "predict",
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
    """One device kind before and after fitting to `modules` measured modules; `rms_log` is
    the root mean square of log(predicted / measured) after the fit."""

    kind: str
    before: KindModel
    after: KindModel
    modules: int
    rms_log: float
    combination: str = "max"


@dataclass(frozen=True, slots=True)
class FitResult:
    """The fitted kinds, the kinds left alone (with why), and the tuned profile to save."""

    kinds: tuple[KindFit, ...]
    skipped: tuple[tuple[str, str], ...]
    tuning: Tuning

    def model(self, kind: str) -> KindModel | None:
        """The fitted model of `kind`, None when it was not fitted."""
        return next((k.after for k in self.kinds if k.kind == kind), None)


def predict(facts: ComputeFacts, spec: DeviceSpec, serial: float = 0.0) -> float:
    """Seconds the cost model gives `facts` on a device of kind `spec` (see KindModel)."""
    return KindModel(spec, serial).predict(facts)




def _arrays(ms: Sequence[Measurement], spec: DeviceSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    compute = np.array([sum(f / spec.peak(dt) for dt, f in m.facts.by_dtype()) for m in ms])
    nbytes = np.array([m.facts.bytes_accessed for m in ms])
    dispatches = np.array([max(1, m.facts.dispatches) for m in ms], dtype=float)
    return compute, nbytes, dispatches


def fit_kind(ms: Sequence[Measurement], base: KindModel) -> tuple[KindModel, float]:
    """Least squares on log time of
        t = dispatch + max(c, m) + serial * min(c, m),  c = flops / (s * peak), m = bytes / bandwidth
    over (s, bandwidth, dispatch, serial): every peak is scaled by one factor s, keeping the
    profile's ratios between dtypes. Returns the fitted model and its rms log error."""
    from scipy.optimize import least_squares

    spec = base.spec
    compute, nbytes, dispatches = _arrays(ms, spec)
    y = np.log([m.median for m in ms])
    fastest = float(min(m.median for m in ms))
    lo = np.array([*np.log([1e-9, 1e5, 1e-9]), 0.0])
    hi = np.array([*np.log([1e9, 1e15, max(fastest, 2e-9)]), 1.0])
    prior = np.clip([0.0, math.log(spec.mem_bandwidth), math.log(max(spec.dispatch_overhead, 1e-7)),
                     base.serial], lo, hi)

    def log_time(theta: np.ndarray) -> np.ndarray:
        s, bandwidth, dispatch = np.exp(theta[:3])
        c, m = compute / s, nbytes / bandwidth
        return np.log(dispatch * dispatches + np.maximum(c, m) + theta[3] * np.minimum(c, m))

    def residual(theta: np.ndarray) -> np.ndarray:
        return np.concatenate([log_time(theta) - y, PRIOR * (theta - prior)])

    times = np.exp(y)
    data_start = np.log([max(float(np.max(compute / times)), 1e-9), max(float(np.max(nbytes / times)), 1e5),
                         0.5 * fastest])
    best = None
    for start in (prior[:3], data_start):
        for serial in (0.0, 1.0):
            x0 = np.clip([*start, serial], lo + 1e-9, hi - 1e-9)
            res = least_squares(residual, x0, bounds=(lo, hi), loss="soft_l1", f_scale=ROBUST_SCALE)
            if best is None or res.cost < best.cost:
                best = res
    assert best is not None
    s, bandwidth, dispatch = (float(v) for v in np.exp(best.x[:3]))
    peaks = MappingProxyType({dt: v * s for dt, v in spec.peak_flops.items()})
    fitted = replace(spec, peak_flops=peaks, mem_bandwidth=bandwidth, dispatch_overhead=dispatch)
    rms = float(np.sqrt(np.mean((log_time(best.x) - y) ** 2)))
    return KindModel(fitted, float(best.x[3])), rms


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


def base_model(profile: Profile, kind: str, previous: Tuning | None = None) -> KindModel | None:
    """What the compiler knew of `kind`: the profile's spec, with a previous tuning's fit applied."""
    spec = profile.devices.get(kind)
    if spec is None:
        return None
    fit = previous.devices.get(kind) if previous is not None else None
    if fit is None:
        return KindModel(spec)
    return KindModel(fit.apply(spec), fit.serial, fit if fit.blend > 0 else None)


def _fit_one(ms: Sequence[Measurement], base: KindModel, form: str, llc_bytes: float | None
             ) -> tuple[KindModel, float, str]:
    if form == "roofline":
        after, rms = fit_kind(ms, base)
        return after, rms, combination_name(0.0, after.serial)
    if form != "full":
        raise ValueError(f"unknown fit form '{form}', expected one of: full, roofline")
    from planc.compiler.tuning.fit_full import fit_full
    from planc.compiler.tuning.probes import host_cache_bytes

    return fit_full(ms, base, host_cache_bytes() if llc_bytes is None else (llc_bytes,))


def fit(measurements: Iterable[Measurement], profile: Profile, *, tools: Mapping[str, float] | None = None,
        overrides: bool = True, previous: Tuning | None = None, min_modules: int = MIN_MODULES,
        form: str = "full", llc_bytes: float | None = None) -> FitResult:
    """Fits every device kind with at least `min_modules` measured modules and returns the
    tuned profile: fitted device parameters, each measured module's median seconds per
    kind (with the facts it was measured for) when `overrides`, and tool latencies.
    Probe measurements inform the fit only. Entries of `previous` not measured again are kept."""
    kinds, skipped = [], []
    old = previous.compute if previous else {}
    compute: dict[str, dict[str, float]] = {k: dict(v) for k, v in old.items()}
    facts: dict[str, tuple[float, float]] = dict(previous.facts) if previous else {}
    devices: dict[str, DeviceFit] = dict(previous.devices) if previous else {}
    for kind, ms in _by_kind(measurements).items():
        if overrides:
            for m in ms:
                if m.source == "probe":
                    continue
                compute.setdefault(m.module, {})[kind] = m.median
                facts[m.module] = (m.facts.flops, m.facts.bytes_accessed)
        base = base_model(profile, kind, previous)
        if base is None:
            skipped.append((kind, "not a device kind of the profile"))
            continue
        if len(ms) < min_modules:
            skipped.append((kind, f"{len(ms)} module(s) measured, {min_modules} needed for a fit"))
            continue
        after, rms, how = _fit_one(ms, base, form, llc_bytes)
        kinds.append(KindFit(kind, base, after, len(ms), rms, how))
        devices[kind] = after.device_fit()
    tuning = Tuning(
        scale=previous.scale if previous else MappingProxyType({}),
        compute=MappingProxyType({k: MappingProxyType(v) for k, v in compute.items()}),
        tools=MappingProxyType({**(previous.tools if previous else {}), **(tools or {})}),
        devices=MappingProxyType(devices), facts=MappingProxyType(facts))
    return FitResult(tuple(kinds), tuple(skipped), tuning)


def leave_one_out(measurements: Iterable[Measurement], profile: Profile, *, previous: Tuning | None = None,
                  min_modules: int = MIN_MODULES, form: str = "full", llc_bytes: float | None = None
                  ) -> dict[tuple[str, str], float]:
    """For every measured (module, kind) of the plan: the fitted roofline's prediction when
    that module was left out of the fit (probes always stay in: they are what pins the
    parameters). Kinds with too few modules to fit without one are left out."""
    out: dict[tuple[str, str], float] = {}
    for kind, ms in _by_kind(measurements).items():
        base = base_model(profile, kind, previous)
        if base is None or len(ms) - 1 < min_modules:
            continue
        for i, m in enumerate(ms):
            if m.source == "probe":
                continue
            fitted, _, _ = _fit_one(ms[:i] + ms[i + 1:], base, form, llc_bytes)
            out[(m.module, kind)] = fitted.predict(m.facts)
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
