"""Timing a module's candidate builds on this host: each checked against the reference, the fastest kept.

Used by planc at compile time (when the target is this host's) and by planrt on the first load of
a bundle that carries candidates. Every candidate runs the same seeded inputs; one whose outputs
differ from the reference candidate's (plain IREE) by more than a relative tolerance is refused.
Timing is interleaved (round after round over all candidates) and each candidate's fastest round is
kept, so a noisy shared host moves every candidate alike and adds nothing to the estimate.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from planc.runtime.contract.dtypes import numpy_dtype
from planc.runtime.engine.modules import Device, LoadedModule, ModuleError

__all__ = ["MAX_RTOL", "RTOL", "Build", "Measured", "fastest", "load_build", "measure", "sample_inputs"]

log = logging.getLogger(__name__)

# A candidate agrees with the reference when, relative to the largest reference magnitude, its
# outputs differ by at most RTOL on average and MAX_RTOL anywhere. Builds of one fp32 model differ
# by accumulation order and at a few boundary elements: PP-OCR det's probability map differs
# between IREE and ONNX Runtime by 1e-4 on average and 1.4e-2 at worst, identically for every
# IREE flag set; a wrong build (a miscompile, a layout misread) is off almost everywhere.
RTOL = 1e-3
MAX_RTOL = 5e-2


@dataclass(frozen=True, slots=True)
class Build:
    """One candidate to time: its compiled bytes and the driver that runs it."""

    name: str
    vmfb: bytes
    driver: str
    params: Any = None  # the bundle's weights (engine/params.py), for modules that load parameters


@dataclass(frozen=True, slots=True)
class Measured:
    """A candidate's seconds per call (its fastest round), or None with why it was refused."""

    name: str
    seconds: float | None
    note: str = ""


def sample_inputs(dtypes: Sequence[str], shapes: Sequence[Sequence[int]], seed: int = 0) -> list[np.ndarray]:
    """Seeded inputs: floats in [0, 1), integers in [0, 4), booleans half true."""
    rng = np.random.default_rng(seed)
    out = []
    for dt, shape in zip(dtypes, shapes):
        want = numpy_dtype(dt)
        if want.kind == "f" or dt == "bf16":
            arr = rng.random(tuple(shape), dtype=np.float32).astype(want)
        elif want.kind == "b":
            arr = rng.random(tuple(shape)) < 0.5
        else:
            arr = rng.integers(0, 4, size=tuple(shape)).astype(want)
        out.append(arr)
    return out


def _rel_err(got: Sequence[np.ndarray], want: Sequence[np.ndarray]) -> tuple[float, float]:
    """(mean, max) |got - want| over the largest |want|, the worst output of each; inf on a shape change."""
    mean = worst = 0.0
    for g, w in zip(got, want):
        g64, w64 = np.asarray(g, np.float64), np.asarray(w, np.float64)
        if g64.shape != w64.shape:
            return float("inf"), float("inf")
        if not w64.size:
            continue
        scale = max(float(np.max(np.abs(w64))), 1e-6)
        diff = np.abs(g64 - w64)
        if not np.all(np.isfinite(diff)):
            return float("inf"), float("inf")
        mean, worst = max(mean, float(np.mean(diff)) / scale), max(worst, float(np.max(diff)) / scale)
    return mean, worst


def measure(builds: Sequence[Build], dtypes_in: Sequence[str], shapes_in: Sequence[Sequence[int]],
            dtypes_out: Sequence[str], *, reference: str, budget_s: float = 1.0, rounds: int = 9,
            devices: dict[str, Device] | None = None,
            clock: Callable[[], float] = time.perf_counter) -> dict[str, Measured]:
    """Seconds per call of every build (fastest interleaved round), refusing any whose outputs differ
    from `reference`'s.

    Stops adding rounds once `budget_s` is spent (at least 3 rounds of each). `devices` is reused
    (and filled) per driver, so a caller that then runs the winner loads it on the same device.
    """
    devices = {} if devices is None else devices
    inputs = sample_inputs(dtypes_in, shapes_in)
    loaded: dict[str, Any] = {}  # LoadedModule or OrtModule
    result: dict[str, Measured] = {}
    outputs: dict[str, list[np.ndarray]] = {}
    for b in builds:
        try:
            mod = load_build(b, devices, list(dtypes_in), list(dtypes_out))
            outputs[b.name] = mod(*inputs)
            loaded[b.name] = mod
        except ModuleError as e:
            result[b.name] = Measured(b.name, None, f"failed: {e}")
    if reference not in outputs:
        raise ModuleError(f"the reference build {reference!r} did not run: {result.get(reference)}")
    for name in list(loaded):
        mean, worst = _rel_err(outputs[name], outputs[reference])
        if mean > RTOL or worst > MAX_RTOL:
            result[name] = Measured(name, None, f"mismatch: relative error {mean:.1e} on average, {worst:.1e} "
                                                f"at worst (allowed {RTOL:.0e}, {MAX_RTOL:.0e})")
            del loaded[name]
    views = {n: [m.device.to_device(a, t) for a, t in zip(inputs, dtypes_in)] for n, m in loaded.items()}
    one = {n: _once(m, views[n], clock) for n, m in loaded.items()}
    reps = {n: max(1, int(0.002 / max(s, 1e-7))) for n, s in one.items()}  # samples of >= 2 ms
    samples: dict[str, list[float]] = {n: [] for n in loaded}
    start = clock()
    for r in range(rounds):
        if r >= 3 and clock() - start > budget_s:
            break
        for n, m in loaded.items():
            t = clock()
            for _ in range(reps[n]):
                m.invoke(views[n])
            samples[n].append((clock() - t) / reps[n])
    for n, s in samples.items():
        # The fastest round, not the median: other work on the host only ever adds time, and on a busy
        # machine the median of a few rounds follows the neighbours (a 2 s budget at load 16 once
        # ranked im2col ahead of ONNX Runtime on mobilenet_v3_small, which is 3x faster quiet).
        result[n] = Measured(n, min(s))
    return {b.name: result[b.name] for b in builds}


def load_build(b: Build, devices: dict[str, Device], dtypes_in: list[str], dtypes_out: list[str]):
    """A build loaded on its driver's device (made once per driver in `devices`)."""
    if b.driver == "ort":  # ONNX Runtime on host memory (planc[ort]); its values live on local-sync
        from planc.runtime.engine.ort_module import OrtModule

        dev = devices.get("local-sync") or devices.setdefault("local-sync", Device("local-sync"))
        return OrtModule(b.name, dev, b.vmfb, dtypes_in, dtypes_out)
    dev = devices.get(b.driver) or devices.setdefault(b.driver, Device(b.driver))
    return LoadedModule(b.name, dev, b.vmfb, dtypes_in, dtypes_out, b.params)


def _once(mod: Any, views: list, clock: Callable[[], float]) -> float:
    mod.invoke(views)  # warm: first-call allocations and page faults
    t = clock()
    mod.invoke(views)
    return clock() - t


def fastest(measured: Mapping[str, Measured], *, reference: str, margin: float = 0.03) -> str:
    """The fastest refused-by-nothing candidate; the reference unless another beats it by `margin`."""
    ok = {n: m.seconds for n, m in measured.items() if m.seconds is not None}
    best = min(ok, key=lambda n: ok[n])
    ref = ok.get(reference)
    return reference if ref is not None and ok[best] > ref * (1 - margin) else best
