"""Probe modules `planc tune` times beside a bundle's own, so the fit sees dispatch, bandwidth and peak."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from planc.compiler.bundle.build import HEAVY_FLOPS
from planc.compiler.codegen.cache import Cache
from planc.compiler.codegen.compile import CompileJob, compile_all
from planc.compiler.codegen.stablehlo import cost_facts, export_stablehlo
from planc.compiler.codegen.targets import Target
from planc.compiler.costs.model import ComputeFacts

__all__ = ["PROBES", "Probe", "driver_for", "probe_cases"]


def _add(x, y):
    return x + y


def _matmul(a, b):
    return a @ b


@dataclass(frozen=True, slots=True)
class Probe:
    """One single-op f32 module (so fused and unfused cost facts agree) and what it shows."""

    name: str
    fn: Callable
    shapes: tuple[tuple[int, ...], ...]
    shows: str


PROBES: tuple[Probe, ...] = (
    Probe("probe_add_16", _add, ((16,), (16,)), "dispatch overhead"),
    Probe("probe_add_256k", _add, ((262144,), (262144,)), "memory bandwidth"),
    Probe("probe_matmul_128", _matmul, ((128, 128), (128, 128)), "peak"),
    Probe("probe_matmul_256", _matmul, ((256, 256), (256, 256)), "peak"),
)


def driver_for(target: Target, flops: float) -> str:
    """The driver the bundle writer gives a module of `flops` (compiler/bundle/build.py's rule)."""
    if target.drivers[0] != "local-sync" and "local-task" not in target.drivers:
        return target.driver
    return "local-task" if flops >= HEAVY_FLOPS else "local-sync"


def probe_cases(targets: Iterable[str], *, cache: bool = True, probes: tuple[Probe, ...] = PROBES) -> tuple:
    """A ModuleCase per probe and target (compiled through the module cache), facts from
    JAX's cost analysis the way the compiler computes a model's."""
    from planc.compiler.tuning.tune import ModuleCase

    wanted = [Target.parse(t) for t in targets]
    lowered = {}
    for p in probes:
        types = [(s, "f32") for s in p.shapes]
        f = cost_facts(p.fn, types, fused=False)
        facts = ComputeFacts(f.flops, f.bytes_accessed, "f32")
        lowered[p.name] = (export_stablehlo(p.fn, types, name=p.name), facts)
    jobs = [CompileJob(name, t, mlir) for name, (mlir, _) in lowered.items() for t in wanted]
    built = compile_all(jobs, cache=Cache.default() if cache else None, progress=None)
    return tuple(
        ModuleCase(p.name, t.value, driver_for(t, lowered[p.name][1].flops), built[(p.name, t)],
                   tuple(("f32", s) for s in p.shapes), ("f32",), lowered[p.name][1], source="probe")
        for t in wanted for p in probes)
