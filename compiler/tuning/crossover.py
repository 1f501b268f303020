"""The local-sync / local-task crossover of this host: from how many flops IREE's thread pool pays off."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from types import MappingProxyType
from typing import TYPE_CHECKING

from planc.compiler.cache import Cache
from planc.compiler.codegen.compile import CompileJob, compile_all
from planc.compiler.codegen.targets import Target
from planc.compiler.costs.model import ComputeFacts
from planc.compiler.hlo.stablehlo import export_stablehlo

if TYPE_CHECKING:
    from planc.compiler.tuning.fit import FitResult
    from planc.compiler.tuning.tune import Measurement, ModuleCase

__all__ = ["SIZES", "crossover_cases", "crossover_flops", "with_crossover"]

# n x n matmuls (2 n^3 flops: 0.5 MFLOP to 0.27 GFLOP), timed on both CPU drivers.
SIZES = (64, 128, 192, 256, 384, 512)
# No crossover within the sizes timed: local-task is taken to pay off from this many flops.
NEVER = 1e15


def _matmul(a, b):
    return a @ b


def crossover_cases(targets: Iterable[str], *, sizes: Sequence[int] = SIZES, cache: bool = True
                    ) -> tuple[ModuleCase, ...]:
    """A case per size, driver and CPU target whose IREE driver may be local-task; module
    names `crossover_N@DRIVER`, source "probe" (never a module time, never in the fit)."""
    from planc.compiler.tuning.tune import ModuleCase

    wanted = [t for t in map(Target.parse, targets) if "local-task" in t.drivers and "local-sync" in t.drivers]
    texts = {n: export_stablehlo(_matmul, [((n, n), "f32")] * 2, name=f"crossover_{n}") for n in sizes}
    jobs = [CompileJob(f"crossover_{n}", t, text) for n, text in texts.items() for t in wanted]
    built = compile_all(jobs, cache=Cache.default() if cache else None, progress=None)
    return tuple(
        ModuleCase(f"crossover_{n}@{driver}", t.value, driver, built[(f"crossover_{n}", t)], (("f32", (n, n)),) * 2,
                   ("f32",), ComputeFacts(2.0 * n ** 3, 12.0 * n * n, "f32"), source="probe")
        for t in wanted for n in sizes for driver in ("local-sync", "local-task"))


def crossover_flops(measured: Iterable[Measurement]) -> dict[str, float]:
    """Per target: the flops from which local-task ran faster than local-sync at every larger
    size timed (interpolated on log flops between the two sizes around the crossing);
    NEVER when local-sync won throughout."""
    times: dict[str, dict[float, dict[str, float]]] = {}
    for m in measured:
        if m.module.startswith("crossover_") and "@" in m.module:
            times.setdefault(m.target, {}).setdefault(m.facts.flops, {})[m.driver] = m.median
    out = {}
    for target, by_flops in times.items():
        rows = sorted((f, math.log(d["local-sync"] / d["local-task"])) for f, d in by_flops.items()
                      if {"local-sync", "local-task"} <= d.keys())
        if not rows:
            continue
        out[target] = _crossing(rows)
    return out


def _crossing(rows: list[tuple[float, float]]) -> float:
    """rows: (flops, log(sync / task)) ascending; positive where local-task wins."""
    if rows[-1][1] <= 0:
        return NEVER
    i = len(rows) - 1
    while i > 0 and rows[i - 1][1] > 0:
        i -= 1
    if i == 0:
        return rows[0][0]
    (f0, g0), (f1, g1) = rows[i - 1], rows[i]
    share = g0 / (g0 - g1)  # where the log ratio crosses zero, on log flops
    return float(math.exp(math.log(f0) + share * (math.log(f1) - math.log(f0))))


def with_crossover(result: FitResult, flops: Mapping[str, float]) -> FitResult:
    """`result` whose fitted device kinds carry their measured crossover (DeviceFit.local_task_flops)."""
    devices = dict(result.tuning.devices)
    for kind, f in flops.items():
        if kind in devices:
            devices[kind] = replace(devices[kind], local_task_flops=f)
    return replace(result, tuning=replace(result.tuning, devices=MappingProxyType(devices)))
