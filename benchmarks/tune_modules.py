"""The modules benchmarks/tune.py measures: generated JAX and StableHLO modules by family, and the examples'."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import jax
import jax.numpy as jnp
from planc.compiler.bundle.build import BuildOptions, build_bundle
from planc.compiler.cache import Cache
from planc.compiler.codegen.compile import CompileJob, compile_all
from planc.compiler.codegen.targets import Target
from planc.compiler.costs.model import ComputeFacts
from planc.compiler.hlo.counts import count_stablehlo
from planc.compiler.hlo.stablehlo import cost_facts, export_stablehlo
from planc.compiler.tuning.probes import driver_for
from planc.compiler.tuning.tune import ModuleCase, bundle_cases, with_dispatches
from planc.runtime.bundle.loader import load_bundle
from planc.runtime.host.detect import detect

__all__ = ["FAMILIES", "Case", "example_cases", "family_of", "generated_cases"]

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = [("defects/defects.plan", "defects"), ("agent/agent.plan", "triage"),
            ("sensors/sensors.plan", "sensors"), ("sensors/sensors.plan", "vib_screen")]
FAMILIES = ("elementwise", "reduction", "matmul", "attention", "conv", "mlir")


@dataclass(frozen=True)
class Case:
    """A module to time with its family, and its facts as today's planc computed them
    (`legacy`: XLA's cost analysis of a jax model, 0 flops and its I/O bytes for mlir)."""

    case: ModuleCase
    family: str
    legacy: ComputeFacts


def _conv(x, w):
    return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _layernorm(x):
    mu = x.mean(-1, keepdims=True)
    return (x - mu) / jnp.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + 1e-5)


def _mha(h: int):
    def f(q, k, v):
        s, d = q.shape
        qh, kh, vh = (t.reshape(s, h, d // h).transpose(1, 0, 2) for t in (q, k, v))
        a = jax.nn.softmax(jnp.einsum("hqd,hkd->hqk", qh, kh) / (d // h) ** 0.5, axis=-1)
        return jnp.einsum("hqk,hkd->hqd", a, vh).transpose(1, 0, 2).reshape(s, d)
    return f


Spec = tuple[str, str, Callable, list[tuple[int, ...]]]


def _specs() -> list[Spec]:
    """(family, name, function, f32 argument shapes)."""
    out: list[Spec] = []
    for n in (1 << 10, 1 << 14, 1 << 17, 1 << 19, 1 << 21):
        out.append(("elementwise", f"axpb_{n}", lambda x: x * 1.5 + 0.5, [(n,)]))
    for n in (1 << 12, 1 << 16, 1 << 20):
        out.append(("elementwise", f"addmul_{n}", lambda x, y: (x + y) * y, [(n,), (n,)]))
    for n in (1 << 13, 1 << 18):
        out.append(("elementwise", f"tanh_{n}", lambda x: jnp.tanh(x) * 0.5 + x, [(n,)]))
    for n in (1 << 12, 1 << 17):
        out.append(("elementwise", f"gelu_{n}", jax.nn.gelu, [(n,)]))
    for n in (1 << 15, 1 << 20):
        out.append(("elementwise", f"expdiv_{n}", lambda x, y: jnp.exp(-x * x) / (1.0 + y * y), [(n,), (n,)]))
    for r, c in ((64, 256), (512, 512), (1024, 2048)):
        out.append(("reduction", f"rowsum_{r}x{c}", lambda x: jnp.sum(x, axis=1), [(r, c)]))
    for r, c in ((256, 64), (1024, 1024)):
        out.append(("reduction", f"colmax_{r}x{c}", lambda x: jnp.max(x, axis=0), [(r, c)]))
    for r, c in ((128, 128), (512, 512)):
        out.append(("reduction", f"softmax_{r}x{c}", lambda x: jax.nn.softmax(x, axis=-1), [(r, c)]))
    for r, c in ((64, 256), (512, 1024)):
        out.append(("reduction", f"layernorm_{r}x{c}", _layernorm, [(r, c)]))
    for n in (24, 32, 48, 64, 96, 128, 160, 224, 256, 320, 448, 512):
        out.append(("matmul", f"matmul_{n}", lambda a, b: a @ b, [(n, n), (n, n)]))
    for b, n in ((8, 64), (4, 128)):
        out.append(("matmul", f"bmm_{b}x{n}", lambda a, c: jnp.einsum("bij,bjk->bik", a, c), [(b, n, n), (b, n, n)]))
    for b, d in ((8, 64), (32, 192), (128, 384), (256, 768)):
        out.append(("matmul", f"mlp_{b}x{d}", lambda x, w1, w2: jnp.maximum(x @ w1, 0.0) @ w2,
                    [(b, d), (d, d), (d, d)]))
    for s, d in ((32, 32), (64, 64), (128, 64), (256, 128), (512, 64)):
        out.append(("attention", f"attn_{s}x{d}", lambda q, k, v: jax.nn.softmax(q @ k.T, axis=-1) @ v,
                    [(s, d)] * 3))
    for s, d, h in ((64, 128, 4), (128, 256, 8)):
        out.append(("attention", f"mha_{s}x{d}h{h}", _mha(h), [(s, d)] * 3))
    for hw, ci, co in ((16, 8, 16), (32, 16, 32), (64, 8, 8), (32, 32, 64), (8, 64, 128)):
        out.append(("conv", f"conv_{hw}_{ci}_{co}", _conv, [(1, hw, hw, ci), (3, 3, ci, co)]))
    for hw, ci, co in ((32, 16, 16), (16, 32, 32)):
        out.append(("conv", f"convrelu_{hw}_{ci}_{co}", lambda x, w: jnp.maximum(_conv(x, w), 0.0) * 0.5,
                    [(1, hw, hw, ci), (3, 3, ci, co)]))
    return out


# StableHLO written as text, declared as `mlir` models: today's planc gives them 0 flops.
MLIR_MODELS = {
    "mlir_dense_tanh_64x256": ("matmul-tanh", lambda x, w: jnp.tanh(x @ w), [(64, 256), (256, 256)]),
    "mlir_dense_tanh_256x512": ("matmul-tanh", lambda x, w: jnp.tanh(x @ w), [(256, 512), (512, 512)]),
    "mlir_mlp_32x128": ("mlp", lambda x, w1, w2: jnp.maximum(x @ w1, 0.0) @ w2, [(32, 128), (128, 128), (128, 128)]),
    "mlir_softmax_256x256": ("softmax", lambda x: jax.nn.softmax(x, axis=-1), [(256, 256)]),
    "mlir_conv_32_8_16": ("conv", _conv, [(1, 32, 32, 8), (3, 3, 8, 16)]),
    "mlir_attn_128x64": ("attention", lambda q, k, v: jax.nn.softmax(q @ k.T, axis=-1) @ v, [(128, 64)] * 3),
    "mlir_axpb_262144": ("elementwise", lambda x: x * 1.5 + 0.5, [(262144,)]),
}


def _facts(text: str) -> ComputeFacts:
    c = count_stablehlo(text)
    return ComputeFacts(c.flops, c.bytes_accessed, "f32", c.dispatches, working_set=c.working_set,
                        vector_flops=c.vector_flops)


def generated_cases(target: Target, driver: str) -> list[Case]:
    """Every generated module compiled for `target` (through the module cache)."""
    lowered = {}
    for family, name, fn, shapes in _specs():
        types = [(s, "f32") for s in shapes]
        f = cost_facts(fn, types)  # today's benchmark facts: XLA's, after fusion
        lowered[name] = (family, export_stablehlo(fn, types, name=name), ComputeFacts(f.flops, f.bytes_accessed, "f32"),
                         shapes)
    for name, (_, fn, shapes) in MLIR_MODELS.items():
        text = export_stablehlo(fn, [(s, "f32") for s in shapes], name=name)
        c = count_stablehlo(text)  # only the I/O bytes are what today's planc knows of an mlir model
        io = 4.0 * (sum(_n(s) for s in shapes) + _out_elements(text))
        lowered[name] = ("mlir", text, ComputeFacts(0.0, io, "f32"), shapes)
        del c
    built = compile_all([CompileJob(n, target, v[1]) for n, v in lowered.items()], cache=Cache.default(),
                        progress=None)
    out = []
    for name, (family, text, legacy, shapes) in lowered.items():
        facts = with_dispatches(_facts(text), built[(name, target)])
        drv = driver if driver != "rule" else driver_for(target, facts.flops)
        case = ModuleCase(name, target.value, drv, built[(name, target)], tuple(("f32", s) for s in shapes),
                          ("f32",), facts)
        out.append(Case(case, family, legacy))
    return out


def _n(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _out_elements(text: str) -> int:
    from planc.compiler.hlo.stablehlo import mlir_signature

    return sum(_n(s) for _, s in mlir_signature(text)[1])


def family_of(facts_ops: dict[str, int], is_mlir: bool) -> str:
    """The family of a module by what it computes (its StableHLO ops)."""
    if is_mlir:
        return "mlir"
    if facts_ops.get("convolution"):
        return "conv"
    if facts_ops.get("dot_general", 0) >= 2 and facts_ops.get("exponential"):
        return "attention"
    if facts_ops.get("dot_general") or facts_ops.get("dot"):
        return "matmul"
    if facts_ops.get("reduce"):
        return "reduction"
    return "elementwise"


def example_cases(target: str, out: Path, driver: str) -> list[Case]:
    """The example plans' modules (built into bundles under `out`), with today's facts from the manifest."""
    host = detect()
    cases = []
    for file, plan in EXAMPLES:
        source = ROOT / "examples" / file
        res = build_bundle(source, out / f"{plan}.planb", plan=plan, options=BuildOptions(progress=None))
        bundle = load_bundle(res.path)
        mods = bundle.manifest["modules"]
        mlir_members = _mlir_members(res)
        for c in bundle_cases(bundle, host, source=source, targets=(target,)):
            text = bundle.read(mods[c.module]["mlir"]).decode()
            is_mlir = c.module in mlir_members
            family = family_of(dict(count_stablehlo(text).ops), is_mlir)
            legacy = _legacy(res, c.module, c.facts) if not is_mlir else ComputeFacts(
                0.0, float(sum(4 * _n(tuple(t["shape"])) for t in (*mods[c.module]["inputs"],
                                                                    *mods[c.module]["outputs"]))), "f32")
            cases.append(Case(replace(c, module=f"{plan}.{c.module}",
                                      driver=c.driver if driver == "rule" else driver), family, legacy))
    return cases


def _mlir_members(res) -> set[str]:
    from planc.compiler.ir.graph import ComputeTask, GroupTask, ModelKind

    out = set()
    for t in res.graph.walk():
        if isinstance(t, GroupTask) and any(isinstance(m, ComputeTask) and res.graph.info.model(m.model).kind
                                            is ModelKind.MLIR for m in t.members):
            out.add(t.name)
    return out


def _legacy(res, module: str, facts: ComputeFacts) -> ComputeFacts:
    """Today's facts of an example module: XLA's cost analysis (unfused) of each jax member,
    merged as today's merge pass merges them (intermediates that stay inside not counted)."""
    from planc.compiler.codegen.lower import value_types
    from planc.compiler.costs.deploy import task_facts
    from planc.compiler.costs.model import merge_facts
    from planc.compiler.hlo.stablehlo import cost_facts as xla
    from planc.compiler.ir.graph import ComputeTask, GroupTask, ValueRef
    from planc.compiler.models.load import load_model

    graph = res.graph
    typed = value_types(graph)
    group = next(t for t in graph.walk() if isinstance(t, GroupTask) and t.name == module)
    exported = {str(r) for r in group.exports}
    parts, internal = [], 0.0
    for m in group.members:
        types = [typed.get(str(r)) if isinstance(r, ValueRef) else None for r in m.uses()]
        if isinstance(m, ComputeTask):
            f = xla(load_model(graph.info.model(m.model), types, facts=False).fn, types, fused=False)
            parts.append(ComputeFacts(f.flops, f.bytes_accessed, "f32"))
        elif (tf := task_facts(m, types)) is not None:
            parts.append(tf)
        internal += sum(t.nbytes for v, t in zip(m.values(), m.results) if str(v) not in exported and t is not None)
    return merge_facts(parts, 2.0 * internal) if parts else facts
