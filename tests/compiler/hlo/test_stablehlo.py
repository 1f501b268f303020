"""Lowering JAX functions to StableHLO, normalizing it, and reading its signature."""

import importlib.util
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest
from planc.compiler.hlo.stablehlo import (
    StableHLOError,
    cost_facts,
    export_stablehlo,
    mlir_signature,
    normalize,
    strip_debuginfo,
)

pytestmark = pytest.mark.iree  # parsing and passes go through IREE's MLIR bindings

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"

MODEL_SOURCE = textwrap.dedent(
    """
    import jax

    def dense(x, w, b):
        return jax.nn.relu(x @ w + b)
    """
)
DENSE_TYPES = [((4, 8), "f32"), ((8, 16), "f32"), ((16,), "f32")]


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_export_is_independent_of_the_source_path(tmp_path):
    copies = []
    for i, sub in enumerate(["a", "deeper/b"]):
        path = tmp_path / sub / "models.py"
        path.parent.mkdir(parents=True)
        path.write_text(MODEL_SOURCE)
        copies.append(_load(path, f"planc_test_models_{i}"))
    # The raw lowering carries the file path in its locations: the test can fail.
    raw = [jax.jit(m.dense).lower(*[jax.ShapeDtypeStruct(s, jnp.float32) for s, _ in DENSE_TYPES])
           .as_text(debug_info=True) for m in copies]
    assert raw[0] != raw[1] and str(tmp_path / "a") in raw[0]
    texts = [export_stablehlo(m.dense, DENSE_TYPES, name="g0") for m in copies]
    assert texts[0] == texts[1]
    assert str(tmp_path) not in texts[0] and "loc(" not in texts[0]
    assert texts[0].startswith("module @g0")
    assert "func.func public @main(" in texts[0]


def test_exported_signature():
    text = export_stablehlo(lambda x, w, b: jax.nn.relu(x @ w + b), DENSE_TYPES, name="dense")
    inputs, outputs = mlir_signature(text)
    assert inputs == (("f32", (4, 8)), ("f32", (8, 16)), ("f32", (16,)))
    assert outputs == (("f32", (4, 16)),)


def test_unused_input_is_kept():
    text = export_stablehlo(lambda x, unused: x * 2.0, [((3,), "f32"), ((5,), "i32")], name="u")
    assert mlir_signature(text)[0] == (("f32", (3,)), ("i32", (5,)))


def test_every_dtype_round_trips():
    types = [((2,), "i64"), ((3,), "bf16"), ((1, 2), "f16"), ((4,), "i8"), ((), "bool")]
    text = export_stablehlo(lambda a, b, c, d, e: (a + 1, b > 0, c, d, e), types, name="t")
    inputs, outputs = mlir_signature(text)
    assert inputs == (("i64", (2,)), ("bf16", (3,)), ("f16", (1, 2)), ("i8", (4,)), ("bool", ()))
    assert outputs == (("i64", (2,)), ("bool", (3,)), ("f16", (1, 2)), ("i8", (4,)), ("bool", ()))


def test_classifier_signature():
    text = (EXAMPLES / "defects" / "classifier.mlir").read_text()
    assert mlir_signature(text) == ((("f32", (1, 64, 64, 3)),), (("f32", (1, 4)),))


def test_strip_debuginfo_removes_locations():
    text = textwrap.dedent(
        """
        module @m {
          func.func public @main(%arg0: tensor<2xf32> loc("x")) -> tensor<2xf32> {
            %0 = stablehlo.add %arg0, %arg0 : tensor<2xf32> loc(#loc1)
            return %0 : tensor<2xf32>
          }
        }
        #loc1 = loc("/home/someone/models.py":12:7)
        """
    )
    out = strip_debuginfo(text)
    assert "models.py" not in out and "loc" not in out
    assert "stablehlo.add %arg0, %arg0" in out
    assert strip_debuginfo(out) == out


def test_normalize_renames_and_validates_name():
    text = (EXAMPLES / "defects" / "classifier.mlir").read_text()
    assert normalize(text, name="g1").startswith("module @g1 ")
    with pytest.raises(ValueError, match="invalid module name"):
        normalize(text, name="1 bad")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("func.func public @other(%a: tensor<2xf32>) -> tensor<2xf32> { return %a : tensor<2xf32> }",
         "expected a func.func named @main"),
        ("func.func public @main(%a: tensor<?xf32>) -> tensor<?xf32> { return %a : tensor<?xf32> }",
         "dynamic shape"),
        ("func.func public @main(%a: tensor<2xf64>) -> tensor<2xf64> { return %a : tensor<2xf64> }",
         "element type f64"),
        ("func.func public @main(%a: f32) -> f32 { return %a : f32 }",
         "expected a statically shaped tensor"),
    ],
)
def test_signature_errors_name_the_problem(body, message):
    with pytest.raises(StableHLOError, match=message):
        mlir_signature("module {\n" + body + "\n}")


def test_unparsable_text_is_a_stablehlo_error():
    with pytest.raises(StableHLOError, match="invalid MLIR"):
        mlir_signature("module { func.func @main( }")
    with pytest.raises(StableHLOError, match="invalid MLIR"):
        strip_debuginfo("this is not mlir")


def test_cost_facts_of_a_dense_layer():
    def dense(x, w, b):
        return jax.nn.relu(x @ w + b)

    flops, nbytes = cost_facts(dense, DENSE_TYPES)
    io_bytes = 4 * (4 * 8 + 8 * 16 + 16 + 4 * 16)
    assert flops >= 2 * 4 * 8 * 16  # the matmul alone
    assert flops < 4 * 4 * 8 * 16
    assert nbytes >= io_bytes
    _, unfused = cost_facts(dense, DENSE_TYPES, fused=False)
    assert unfused >= nbytes  # unfused counts every intermediate's round trip


def test_bad_dtype_is_rejected():
    with pytest.raises(ValueError, match="expected one of: f32"):
        export_stablehlo(lambda x: x, [((2,), "f128")], name="m")


def test_tracing_failure_names_function_and_module():
    def mismatched(x, w):
        return x @ w

    with pytest.raises(StableHLOError, match=r"tracing '.*mismatched' for module 'g7' failed: TypeError"):
        export_stablehlo(mismatched, [((2, 3), "f32"), ((4, 5), "f32")], name="g7")
