"""Probe modules `planc tune` times beside a bundle's own, so the fit sees dispatch, bandwidth and peak."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from planc.compiler.cache import Cache
from planc.compiler.codegen.compile import CompileJob, compile_all
from planc.compiler.codegen.targets import Target
from planc.compiler.costs.model import HEAVY_FLOPS, ComputeFacts
from planc.compiler.hlo.counts import count_stablehlo
from planc.compiler.hlo.stablehlo import export_stablehlo

__all__ = ["PROBES", "Probe", "driver_for", "host_cache_bytes", "host_llc_bytes", "probe_cases"]


def _add(x, y):
    return x + y


def _matmul(a, b):
    return a @ b


@dataclass(frozen=True, slots=True)
class Probe:
    """One small f32 module and what it shows the fit."""

    name: str
    fn: Callable
    shapes: tuple[tuple[int, ...], ...]
    shows: str


def _tanh(x):
    import jax.numpy as jnp

    return jnp.tanh(x)


def _mlp(x, w1, w2):
    import jax.numpy as jnp

    return jnp.maximum(x @ w1, 0.0) @ w2


PROBES: tuple[Probe, ...] = (
    Probe("probe_add_16", _add, ((16,), (16,)), "call overhead"),
    Probe("probe_add_256k", _add, ((262144,), (262144,)), "cache bandwidth"),
    Probe("probe_add_4m", _add, ((1 << 22,), (1 << 22,)), "DRAM bandwidth"),
    Probe("probe_matmul_128", _matmul, ((128, 128), (128, 128)), "peak"),
    Probe("probe_matmul_256", _matmul, ((256, 256), (256, 256)), "peak"),
    Probe("probe_tanh_64k", _tanh, ((65536,),), "vector rate"),
    Probe("probe_mlp_64", _mlp, ((16, 64), (64, 64), (64, 64)), "per-dispatch cost"),
)


def host_cache_bytes(root: str = "/sys/devices/system/cpu/cpu0/cache") -> tuple[float, ...]:
    """The sizes in bytes of this host's data or unified caches from level 2 up (as Linux lists
    them for cpu0), smallest first; empty where the host does not say."""
    sizes = set()
    for index in sorted(Path(root).glob("index*")):
        try:
            level = int((index / "level").read_text().strip())
            kind = (index / "type").read_text().strip()
            size = (index / "size").read_text().strip().upper()
        except (OSError, ValueError):
            continue
        if kind == "Instruction" or level < 2 or not size:
            continue
        unit = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(size[-1], 1)
        number = size[:-1] if size[-1] in "KMG" else size
        if number.isdigit():
            sizes.add(float(int(number) * unit))
    return tuple(sorted(sizes))


def host_llc_bytes() -> float:
    """This host's last-level cache in bytes; 0 where the host does not say."""
    sizes = host_cache_bytes()
    return sizes[-1] if sizes else 0.0


def driver_for(target: Target, flops: float) -> str:
    """The driver the bundle writer gives a module of `flops` (compiler/bundle/build.py's rule)."""
    if target.drivers[0] != "local-sync" and "local-task" not in target.drivers:
        return target.driver
    return "local-task" if flops >= HEAVY_FLOPS else "local-sync"


def probe_cases(targets: Iterable[str], *, cache: bool = True, probes: tuple[Probe, ...] = PROBES) -> tuple:
    """A ModuleCase per probe and target (compiled through the module cache), facts counted
    from its StableHLO the way the compiler counts a model's, dispatches read from the module."""
    from planc.compiler.tuning.cases import ModuleCase, with_dispatches

    wanted = [Target.parse(t) for t in targets]
    lowered = {}
    for p in probes:
        text = export_stablehlo(p.fn, [(s, "f32") for s in p.shapes], name=p.name)
        c = count_stablehlo(text)
        lowered[p.name] = (text, ComputeFacts(c.flops, c.bytes_accessed, "f32", c.dispatches,
                                              working_set=c.working_set, vector_flops=c.vector_flops))
    jobs = [CompileJob(name, t, mlir) for name, (mlir, _) in lowered.items() for t in wanted]
    built = compile_all(jobs, cache=Cache.default() if cache else None, progress=None)
    return tuple(
        ModuleCase(p.name, t.value, driver_for(t, lowered[p.name][1].flops), built[(p.name, t)],
                   tuple(("f32", s) for s in p.shapes), ("f32",),
                   with_dispatches(lowered[p.name][1], built[(p.name, t)]), source="probe")
        for t in wanted for p in probes)
