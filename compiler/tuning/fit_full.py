"""Fitting the fuller cost formula (costs.formula) to measured modules of one device kind."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np
from planc.compiler.costs.formula import MAX_BLEND, module_time
from planc.compiler.costs.tuned_model import DeviceFit

if TYPE_CHECKING:
    from planc.compiler.tuning.cases import Measurement
    from planc.compiler.tuning.kinds import KindModel

__all__ = ["COMBINATIONS", "fit_full"]

PRIOR = 0.01
ROBUST_SCALE = 0.2
# A blend is kept only when it fits this much better (relative cost) than max or sum.
BLEND_GAIN = 0.02
COMBINATIONS = ("max", "sum", "blend")
_MAX_CACHE_GAIN = math.log(30.0)


def _arrays(ms: Sequence[Measurement], peaks: dict[str, float]) -> tuple[np.ndarray, ...]:
    compute = np.array([sum(f / peaks[dt] for dt, f in m.facts.by_dtype()) for m in ms])
    nbytes = np.array([m.facts.bytes_accessed for m in ms])
    ws = np.array([m.facts.working_set for m in ms])
    dispatches = np.array([max(1, m.facts.dispatches) for m in ms], dtype=float)
    vector = np.array([m.facts.vector_flops / m.facts.flops if m.facts.flops > 0 else 0.0 for m in ms])
    return compute, nbytes, ws, dispatches, vector


def fit_full(ms: Sequence[Measurement], base: KindModel, caches: Sequence[float] = ()
             ) -> tuple[KindModel, float, str]:
    """_fit_at each cache size of `caches` (the host's levels; none: one-level memory),
    keeping the best fit: the level whose size best separates in-cache from DRAM traffic."""
    results = [_fit_at(ms, base, llc) for llc in (caches or (0.0,))]
    best = min(results, key=lambda r: r[3])
    return best[0], best[1], best[2]


def _fit_at(ms: Sequence[Measurement], base: KindModel, llc_bytes: float
            ) -> tuple[KindModel, float, str, float]:
    """Least squares on log time of
        t = call + per_dispatch x dispatches + combine(compute, memory(bytes, working set))
    compute = (contraction flops + vector flops / rate) / (s x peak)
    over (s, DRAM bandwidth, cache bandwidth gain, call, per-dispatch, rate, blend): memory is the
    two-level model of costs.formula with `llc_bytes` of last-level cache (0: one level),
    the combination max, sum or a p-norm blend, whichever fits best (a blend only when it
    beats both by BLEND_GAIN). Returns the fitted model, its rms log error and the combination."""
    from planc.compiler.tuning.kinds import KindModel

    spec = base.spec
    peaks = {dt: spec.peak(dt) for m in ms for dt, _ in m.facts.by_dtype()}
    compute, nbytes, ws, dispatches, vector = _arrays(ms, peaks)
    y = np.log([m.median for m in ms])
    fastest = float(min(m.median for m in ms))
    two_level = llc_bytes > 0
    # theta: log s, log dram, cache gain, log call, log per-dispatch, log vector rate, log p
    lo = np.array([math.log(1e-9), math.log(1e5), 0.0, math.log(1e-9), math.log(1e-10), math.log(0.02), 0.0])
    hi = np.array([math.log(1e9), math.log(1e15), _MAX_CACHE_GAIN if two_level else 1e-9,
                   math.log(max(fastest, 2e-9)), math.log(max(fastest, 2e-9)), 0.0, math.log(MAX_BLEND)])
    prior = np.clip([0.0, math.log(spec.mem_bandwidth), math.log(2.0), math.log(max(spec.dispatch_overhead, 1e-7)),
                     math.log(max(spec.dispatch_overhead, 1e-7) / 4), math.log(0.5), math.log(4.0)], lo, hi)

    def log_time(theta: np.ndarray, blend: float) -> np.ndarray:
        s, dram, gain, call, each, rate = np.exp(theta[:6])
        c = compute / s * (1.0 + vector * (1.0 / rate - 1.0))
        return np.log(module_time(c, nbytes, ws, dispatches, call=call, per_dispatch=each,
                                  dram_bw=dram, cache_bw=dram * gain if two_level else 0.0,
                                  llc_bytes=llc_bytes, blend=blend))

    def solve(which: str):
        from scipy.optimize import least_squares

        free = which == "blend"
        fixed = {"max": MAX_BLEND, "sum": 1.0}.get(which, 0.0)
        n = 7 if free else 6

        def residual(theta: np.ndarray) -> np.ndarray:
            blend = float(np.exp(theta[6])) if free else fixed
            return np.concatenate([log_time(theta, blend) - y, PRIOR * (theta - prior[:n])])

        times = np.exp(y)
        guess = np.array([math.log(max(float(np.max(compute / times)), 1e-9) / 1.0) if compute.any() else 0.0,
                          math.log(max(float(np.max(nbytes / times)), 1e5)), math.log(2.0),
                          math.log(0.5 * fastest), math.log(0.1 * fastest), math.log(0.5), math.log(4.0)])
        best = None
        for start in (prior, guess):
            x0 = np.clip(start[:n], lo[:n] + 1e-9, hi[:n] - 1e-9)
            res = least_squares(residual, x0, bounds=(lo[:n], hi[:n]), loss="soft_l1", f_scale=ROBUST_SCALE)
            if best is None or res.cost < best.cost:
                best = res
        assert best is not None
        blend = float(np.exp(best.x[6])) if free else fixed
        return best, blend

    fits = {which: solve(which) for which in COMBINATIONS}
    simple = min(("max", "sum"), key=lambda w: fits[w][0].cost)
    which = "blend" if fits["blend"][0].cost < (1 - BLEND_GAIN) * fits[simple][0].cost else simple
    res, blend = fits[which]
    s, dram, gain, call, each, rate = (float(v) for v in np.exp(res.x[:6]))
    peaks_fitted = MappingProxyType({dt: v * s for dt, v in spec.peak_flops.items()})
    fitted = replace(spec, peak_flops=peaks_fitted, mem_bandwidth=dram, dispatch_overhead=call)
    full = DeviceFit(peaks_fitted, dram, call, 0.0, per_dispatch=each,
                     cache_bandwidth=dram * gain if two_level else 0.0, llc_bytes=llc_bytes if two_level else 0.0,
                     blend=blend, local_task_flops=base.full.local_task_flops if base.full else 0.0,
                     vector_rate=rate)
    rms = float(np.sqrt(np.mean((log_time(res.x, blend) - y) ** 2)))
    return KindModel(fitted, 0.0, full), rms, which, float(res.cost)
