"""The fitted cost formula: call and dispatch overheads, a two-level memory, a chosen compute/memory combination."""

from __future__ import annotations

import numpy as np

__all__ = ["MAX_BLEND", "combination_name", "combine", "memory_time", "module_time"]

# A blend exponent at or above this is the roofline's max (the p-norm is within 1 % of it).
MAX_BLEND = 64.0


def combine(c: np.ndarray | float, m: np.ndarray | float, blend: float, serial: float = 0.0) -> np.ndarray:
    """Compute time `c` and memory time `m` combined: the p-norm (c^p + m^p)^(1/p) with
    p = `blend` (1: their sum, MAX_BLEND and up: their max, between: a smooth blend);
    `blend` 0 is the older form max + serial x min."""
    c, m = np.asarray(c, dtype=float), np.asarray(m, dtype=float)
    hi, lo = np.maximum(c, m), np.minimum(c, m)
    if blend <= 0:
        return hi + serial * lo
    if blend >= MAX_BLEND:
        return hi
    ratio = np.divide(lo, hi, out=np.zeros_like(hi), where=hi > 0)
    return hi * (1.0 + ratio ** blend) ** (1.0 / blend)


def combination_name(blend: float, serial: float = 0.0) -> str:
    """How compute and memory combine, in words: max, sum, blend p=..., or max + serial x min."""
    if blend <= 0:
        return "max" if serial == 0 else ("sum" if serial == 1 else f"max + {serial:.2f} x min")
    if blend >= MAX_BLEND:
        return "max"
    return "sum" if blend <= 1.0 + 1e-6 else f"blend p={blend:.2f}"


def memory_time(nbytes: np.ndarray | float, working_set: np.ndarray | float, dram_bw: float,
                cache_bw: float = 0.0, llc_bytes: float = 0.0) -> np.ndarray:
    """Seconds to move `nbytes`: the share of the working set that fits in the last-level
    cache (`llc_bytes`) streams at `cache_bw`, the rest at `dram_bw`. One level (`dram_bw`
    alone) when the cache is unknown (0). A working set of 0 means `nbytes`."""
    nbytes = np.asarray(nbytes, dtype=float)
    if cache_bw <= 0 or llc_bytes <= 0:
        return nbytes / dram_bw
    ws = np.asarray(working_set, dtype=float)
    ws = np.where(ws > 0, ws, nbytes)
    in_cache = np.clip(np.divide(llc_bytes, ws, out=np.ones_like(ws), where=ws > 0), 0.0, 1.0)
    return nbytes * (in_cache / cache_bw + (1.0 - in_cache) / dram_bw)


def module_time(compute: np.ndarray | float, nbytes: np.ndarray | float, working_set: np.ndarray | float,
                dispatches: np.ndarray | float, *, call: float, per_dispatch: float, dram_bw: float,
                cache_bw: float = 0.0, llc_bytes: float = 0.0, blend: float = 0.0,
                serial: float = 0.0) -> np.ndarray:
    """Seconds of one module call: `call` + `per_dispatch` x dispatches + the combination of
    compute seconds (already divided by the peaks) and memory seconds."""
    m = memory_time(nbytes, working_set, dram_bw, cache_bw, llc_bytes)
    return call + per_dispatch * np.asarray(dispatches, dtype=float) + combine(compute, m, blend, serial)
