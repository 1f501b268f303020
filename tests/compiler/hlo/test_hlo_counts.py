"""Flop, byte and dispatch counts from StableHLO text, and from what IREE compiled; a jax and an
mlir model of one function are priced alike."""

from __future__ import annotations

import textwrap

import jax
import jax.numpy as jnp
import pytest
from planc.compiler.codegen.compile import CompileJob, compile_all
from planc.compiler.codegen.targets import Target
from planc.compiler.costs.dispatches import dispatch_count, dump_command
from planc.compiler.hlo.counts import TRANSCENDENTAL_WEIGHT, count_stablehlo
from planc.compiler.hlo.stablehlo import StableHLOError, cost_facts, export_stablehlo
from planc.compiler.ir.graph import ComputeTask
from planc.compiler.passes import Build, InferTypes, Verify
from planc.compiler.pipeline import PipelineOptions, run_pipeline
from planc.dsl.parser import parse_file

pytestmark = pytest.mark.iree


def _conv(x, w):
    return jax.lax.conv_general_dilated(x, w, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _count(fn, *shapes):
    return count_stablehlo(export_stablehlo(fn, [(s, "f32") for s in shapes], name="m"))


def test_matmul_flops_and_traffic_are_exact():
    c = _count(lambda a, b: a @ b, (64, 32), (32, 48))
    assert c.flops == 2 * 64 * 32 * 48
    assert c.bytes_accessed == 4 * (64 * 32 + 32 * 48 + 2 * 64 * 48)  # a write counts twice
    assert c.contraction_flops == c.flops and c.vector_flops == 0
    assert c.dispatches == 1 and c.transcendentals == 0


@pytest.mark.parametrize("fn, shapes", [
    (lambda a, b: jnp.einsum("bij,bjk->bik", a, b), [(4, 16, 8), (4, 8, 24)]),
    (_conv, [(1, 12, 12, 3), (3, 3, 3, 8)]),
    (lambda x: jnp.sum(x, axis=1), [(32, 64)]),
    (lambda x, w1, w2: jnp.maximum(x @ w1, 0.0) @ w2, [(8, 32), (32, 32), (32, 16)]),
])
def test_flops_agree_with_xla_cost_analysis(fn, shapes):
    ours = _count(fn, *shapes).flops
    xla = cost_facts(fn, [(s, "f32") for s in shapes]).flops
    assert ours == pytest.approx(xla, rel=0.02)


def test_transcendentals_are_counted_and_weighted():
    n = 1000
    c = _count(lambda x: jnp.tanh(x) + jnp.exp(x), (n,))
    assert c.transcendentals == 2 * n
    assert c.flops == n * (TRANSCENDENTAL_WEIGHT["tanh"] + TRANSCENDENTAL_WEIGHT["exponential"] + 1)
    assert c.bytes_accessed == 3 * 4 * n  # one fused dispatch: read x, write the result
    assert c.vector_flops == c.flops


def test_fusion_keeps_intermediates_of_an_elementwise_chain_on_chip():
    chain = _count(lambda x: ((x * 2.0 + 1.0) * x - 3.0) * 0.5, (4096,))
    assert chain.bytes_accessed == 3 * 4 * 4096 and chain.dispatches == 1
    two = _count(lambda x, w: jnp.sum(jnp.maximum(x @ w, 0.0), axis=0), (64, 64), (64, 64))
    assert two.dispatches == 2  # the matmul's result goes to memory, the reduction reads it back
    assert two.bytes_accessed == 4 * (2 * 64 * 64 + 2 * 64 * 64 + 64 * 64 + 2 * 64)


def test_weights_count_as_traffic_and_calls_are_inlined():
    w = jnp.arange(32 * 32, dtype=jnp.float32).reshape(32, 32) / 1024  # not a splat: a real weight
    inner = jax.jit(lambda x: jnp.tanh(x @ w))  # a nested jit lowers to a func.call
    text = export_stablehlo(lambda x: inner(x) + 1.0, [((8, 32), "f32")], name="m")
    assert "call @" in text
    c = count_stablehlo(text)
    assert c.flops >= 2 * 8 * 32 * 32
    assert c.bytes_accessed >= 4 * (32 * 32 + 8 * 32 * 2)


def test_bad_text_is_named():
    with pytest.raises(StableHLOError, match="no entry function"):
        count_stablehlo("module { func.func @other() { return } }")
    with pytest.raises(StableHLOError, match="invalid MLIR"):
        count_stablehlo("this is not mlir")


def test_dispatches_are_read_from_the_compiled_module():
    fns = {"mm": (lambda a, b: a @ b, [(32, 32)] * 2),
           "mlp": (lambda x, w1, w2: jnp.maximum(x @ w1, 0.0) @ w2, [(8, 32), (32, 32), (32, 32)]),
           "chain": (lambda x: jnp.tanh(x) * 2.0 + x, [(1024,)])}
    target = Target.parse("x86_64-avx2")
    built = compile_all([CompileJob(n, target, export_stablehlo(f, [(s, "f32") for s in sh], name=n))
                         for n, (f, sh) in fns.items()], cache=None, progress=None)
    got = {n: dispatch_count(built[(n, target)]) for n in fns}
    assert got == {"mm": 1, "mlp": 2, "chain": 1}
    assert dump_command("m.vmfb")[1:] == ["--output=disassembly", "m.vmfb"]


def test_a_jax_and_an_mlir_model_of_one_function_are_priced_alike(tmp_path):
    def attention(q, k, v):
        return jax.nn.softmax(q @ k.T, axis=-1) @ v

    (tmp_path / "models.py").write_text(textwrap.dedent("""
        import jax

        def attention(q, k, v):
            return jax.nn.softmax(q @ k.T, axis=-1) @ v
    """))
    (tmp_path / "attention.mlir").write_text(export_stablehlo(attention, [((16, 32), "f32")] * 3, name="attn"))
    (tmp_path / "both.plan").write_text(textwrap.dedent("""
        plan both {
          target x86_64-avx2
          input q: f32[16, 32]
          model traced = jax "models.py:attention"
          model text = mlir "attention.mlir"
          task a = traced(q, q, q)
          task b = text(q, q, q)
          output a, b
        }
    """))
    plan = parse_file(tmp_path / "both.plan").plans[0]
    graph = run_pipeline(plan, (Build(), Verify(), InferTypes()), PipelineOptions()).graph
    facts = {t.name: t.facts for t in graph.walk() if isinstance(t, ComputeTask)}
    a, b = facts["a"], facts["b"]
    assert a is not None and b is not None and a.flops > 2 * 2 * 16 * 16 * 32
    assert b.flops == pytest.approx(a.flops, rel=0.01)
    assert b.bytes_accessed == pytest.approx(a.bytes_accessed, rel=0.01)
    assert b.dispatches == a.dispatches
