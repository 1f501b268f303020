"""Semantic errors found by build, verify and infer-types: code and primary line:col, real model files."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
from planc.compiler.pipeline import PassFailed, PipelineOptions, parse_pipeline, run_pipeline
from planc.dsl.diagnostics import Diagnostic, render_all
from planc.dsl.parser import parse

MODELS = '''
import jax
import jax.numpy as jnp
import numpy as np

def dense(params, x):
    return jnp.tanh(x @ params["w"])

def ident(x):
    return x * 1.0

def pair(x):
    return x.sum(axis=1), x.max(axis=1)

def boom(x):
    raise ValueError("boom: the model refuses")

def bad_mm(x):
    return x @ jnp.ones((3, 3))

def as_dict(x):
    return {"a": x}

def as_u8(x):
    return x.astype(jnp.uint8)

def two(x, y):
    return x + y

def halve(x):
    return x[:, :2]
'''

MLIR = '''
func.func @main(%arg0: tensor<1x4xf32>) -> tensor<1x2xf32> {
  %0 = stablehlo.slice %arg0 [0:1, 0:2] : (tensor<1x4xf32>) -> tensor<1x2xf32>
  return %0 : tensor<1x2xf32>
}
'''


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("semantic")
    (d / "models.py").write_text(MODELS)
    (d / "syntax_error.py").write_text("def f(x):\n    return x +\n")
    (d / "import_error.py").write_text("import no_such_module_for_planc\n")
    np.savez(d / "w.npz", w=np.ones((4, 4), np.float32))
    (d / "corrupt.npz").write_bytes(b"PK\x03\x04 this is not a zip archive")
    (d / "w.bin").write_bytes(b"\0" * 16)
    (d / "slice.mlir").write_text(MLIR)
    (d / "garbage.mlir").write_text("func.func @main(%a: tensor<2xf32>) -> tensor<2xf32> {\n  %0 = bogus.op\n}\n")
    (d / "nomain.mlir").write_text(MLIR.replace("@main", "@other"))
    (d / "dynamic.mlir").write_text(
        "func.func @main(%a: tensor<?x4xf32>) -> tensor<?x4xf32> {\n  return %a : tensor<?x4xf32>\n}\n")
    return d


_counter = iter(range(10_000))


def diagnose(workdir: Path, body: str, *, expect_error: bool = True) -> tuple[list[Diagnostic], str]:
    """Runs build,verify,infer-types (verify after each) on `plan p { body }`; returns diagnostics."""
    src = "plan p {\n" + textwrap.indent(textwrap.dedent(body).strip("\n"), "  ") + "\n}\n"
    path = workdir / f"p{next(_counter)}.plan"
    path.write_text(src)
    plan = parse(src, str(path)).plans[0]
    passes = parse_pipeline("build,verify,infer-types{facts=false}")
    try:
        result = run_pipeline(plan, passes, PipelineOptions(verify_each=True))
    except PassFailed as e:
        assert expect_error, render_all(e.diagnostics, {str(path): src})
        return list(e.diagnostics), src
    assert not expect_error, f"expected an error in:\n{src}"
    return list(result.diagnostics), src


def at(src: str, needle: str, nth: int = 0) -> tuple[int, int]:
    """1-based (line, col) of the nth occurrence of needle in src."""
    pos = -1
    for _ in range(nth + 1):
        pos = src.index(needle, pos + 1)
    line = src.count("\n", 0, pos) + 1
    return line, pos - (src.rfind("\n", 0, pos) + 1) + 1


def first_error(diags: list[Diagnostic]) -> Diagnostic:
    return next(d for d in diags if d.is_error)


def check(workdir: Path, body: str, code: str, needle: str, nth: int = 0,
          contains: str = "") -> tuple[Diagnostic, str]:
    diags, src = diagnose(workdir, body)
    d = first_error(diags)
    rendered = render_all(diags)
    assert d.code == code, rendered
    assert d.span is not None and (d.span.line, d.span.col) == at(src, needle, nth), rendered
    assert contains in d.message, rendered
    return d, src


def note_lines(d: Diagnostic) -> set[int]:
    return {s.line for _, s in d.notes if s is not None}


# -- types ---------------------------------------------------------------------------------
def test_mlir_argument_type_mismatch_points_at_the_argument(workdir: Path) -> None:
    d, src = check(workdir, """
        input x: f32[1, 8]
        model s = mlir "slice.mlir"
        task y = s(x)
        output y
    """, "E0301", "x)", contains="expects f32[1, 4] as input 0, got f32[1, 8]")
    assert note_lines(d) == {at(src, "input x")[0], at(src, "model s")[0]}


def test_shape_mismatch_inside_a_model_is_a_trace_error_at_the_model(workdir: Path) -> None:
    d, _src = check(workdir, """
        input x: f32[1, 4]
        model m = jax "models.py:bad_mm"
        task y = m(x)
        output y
    """, "E0303", "model m", contains="TypeError")
    assert "(f32[1, 4])" in d.message and any("task 'y'" in m for m, _ in d.notes)


def test_loop_carry_type_mismatch_shows_both_values(workdir: Path) -> None:
    d, src = check(workdir, """
        input x: f32[1, 4]
        model h = jax "models.py:halve"
        loop l max 3 until q > 1 {
          carry c = x then n
          task n = h(c)
          task q = max(n)
        }
        output q
    """, "E0301", "n\n", contains="starts as f32[1, 4] but is updated to f32[1, 2]")
    assert note_lines(d) == {at(src, "carry c")[0], at(src, "task n")[0]}


def test_opaque_tool_result_into_a_model(workdir: Path) -> None:
    d, src = check(workdir, """
        input x: f32[1, 4]
        model i = jax "models.py:ident"
        tool fetch = exec "fetch.sh"
        task raw = fetch(x)
        task y = i(raw)
        output y
    """, "E0301", "raw)", contains="opaque JSON")
    assert "returns" in d.help and note_lines(d) == {at(src, "task raw")[0]}


# -- model files ---------------------------------------------------------------------------
def test_missing_function(workdir: Path) -> None:
    d, _src = check(workdir, """
        input x: f32[1, 4]
        model m = jax "models.py:idnet"
        task y = m(x)
        output y
    """, "E0302", "model m", contains="no function 'idnet'")
    assert d.help == "did you mean 'ident'?"


# -- graph structure -----------------------------------------------------------------------
def test_cycle_through_after(workdir: Path) -> None:
    d, _src = check(workdir, """
        input x: f32[1, 4]
        task a = max(x) after b
        task b = min(a)
        output b
    """, "E0401", "task a", contains="a -> b -> a")
    assert [m for m, _ in d.notes] == ["'b' uses 'a'", "'a' runs after 'b'"]


def test_unknown_value_without_the_front_check(workdir: Path) -> None:
    d, _src = check(workdir, """
        input frame: f32[1, 4]
        task m = max(fram)
        output m
    """, "E0101", "fram)", contains="unknown value 'fram'")
    assert d.help == "did you mean 'frame'?"


def test_unused_tool_is_a_warning_not_an_error(workdir: Path) -> None:
    diags, src = diagnose(workdir, """
        input x: f32[1, 4]
        tool ping = exec "ping.sh"
        task m = max(x)
        task p = ping(m)
        output m
    """, expect_error=False)
    (w,) = [d for d in diags if d.code == "E0403"]
    assert not w.is_error and (w.span.line, w.span.col) == at(src, "task p") and "side effects" in w.message


def test_python_tool_function_that_the_file_lacks_is_a_compile_error(workdir: Path) -> None:
    (workdir / "tools_e0310.py").write_text("import os\n\ndef notify(x):\n    return {}\n")
    d, _ = check(workdir, """
        input x: f32[]
        tool note = python "tools_e0310.py:missing_fn"
        task n = note(x)
        output n
    """, "E0310", '"tools_e0310.py:missing_fn"', contains="defines no function 'missing_fn'")
    assert "define it at the module's top level" in (d.help or "")


def test_python_tool_file_that_does_not_exist_is_a_compile_error(workdir: Path) -> None:
    diags, _ = diagnose(workdir, """
        input x: f32[]
        tool note = python "missing.py:fn"
        task n = note(x)
        output n
    """)
    assert [d.code for d in diags if d.is_error] == ["E0309"], render_all(diags)  # and nothing that follows
    assert "cannot read tool file 'missing.py'" in diags[0].message


# -- one error each ------------------------------------------------------------------------
# A plan body, the error's code, where its primary span starts (the `nth` occurrence of
# `needle` in the plan), and a part of its message.
CASES = [
    pytest.param("""
        input x: f32[1, 4]
        model s = mlir "slice.mlir"
        task y = s(x, x)
        output y
    """, "E0111", "task y", 0, "takes 1 input", id="mlir_wrong_number_of_arguments"),
    pytest.param("""
        input x: f32[1, 4]
        model t = jax "models.py:two"
        task y = t(x)
        output y
    """, "E0111", "task y", 0, "takes 2 inputs, the task passes 1", id="jax_wrong_number_of_arguments"),
    pytest.param("""
        input x: f32[2, 4]
        model p2 = jax "models.py:pair"
        task t = p2(x)
        task s = sum(t.2)
        output s
    """, "E0306", "t.2", 0, "out of range", id="tuple_index_out_of_range"),
    pytest.param("""
        input x: f32[2, 4]
        model i = jax "models.py:ident"
        task y = i(x)
        task s = sum(y.0)
        output s
    """, "E0306", "y.0", 0, "single value", id="index_into_a_single_value"),
    pytest.param("""
        input x: f32[2, 4]
        model p2 = jax "models.py:pair"
        task t = p2(x)
        task s = sum(t)
        output s
    """, "E0306", "t)", 0, "tuple of 2 values", id="tuple_used_without_an_index"),
    pytest.param("""
        input x: f32[1, 4]
        tool fetch = exec "fetch.sh"
        task raw = fetch(x)
        task m = max(raw)
        output m
    """, "E0301", "raw)", 0, "builtin 'max' needs a tensor", id="opaque_tool_result_into_a_builtin"),
    pytest.param("""
        input x: f32[1, 4]
        input y: f32[2]
        tool fetch = exec "fetch.sh" returns f32[1, 4]
        task r = fetch(x) on failure use y
        output r
    """, "E0301", "y\n", 0, "fallback 'y' has type f32[2]", id="fallback_of_another_type"),
    pytest.param("""
        input x: f32[1, 4]
        model d = jax "models.py:as_dict"
        task y = d(x)
        output y
    """, "E0304", "model d", 0, "returns dict", id="model_returning_a_dict"),
    pytest.param("""
        input x: f32[1, 4]
        model u = jax "models.py:as_u8"
        task y = u(x)
        output y
    """, "E0304", "model u", 0, "uint8", id="model_returning_an_unsupported_dtype"),
    pytest.param("""
        input x: f32[1, 4]
        model i = jax "models.py:ident"
        task y = i(x)
        task z = i(x) when y > 0.5
        output z
    """, "E0305", "y > 0.5", 0, "tensor of type f32[1, 4]", id="non_scalar_guard"),
    pytest.param("""
        input x: f32[1, 4]
        model i = jax "models.py:ident"
        loop l max 3 until n < 2 {
          carry c = x then n
          task n = i(c)
        }
        output n
    """, "E0305", "n < 2", 0, "`until`", id="non_scalar_until"),
    pytest.param("""
        input x: f32[1, 4]
        tool fetch = exec "fetch.sh"
        task raw = fetch(x)
        task m = max(x) when raw > 1
        output m
    """, "E0305", "raw > 1", 0, "opaque JSON", id="guard_on_opaque_json"),
    pytest.param("""
        input x: f32[1, 4]
        model m = jax "syntax_error.py:f"
        task y = m(x)
        output y
    """, "E0302", "model m", 0, "SyntaxError", id="syntax_error_in_the_model_file"),
    pytest.param("""
        input x: f32[1, 4]
        model m = jax "import_error.py:f"
        task y = m(x)
        output y
    """, "E0302", "model m", 0, "ModuleNotFoundError: No module named 'no_such_module_for_planc'", id="model_file_importing_a_missing_module"),
    pytest.param("""
        input x: f32[1, 4]
        model m = jax "nowhere.py:f"
        task y = m(x)
        output y
    """, "E0302", "model m", 0, "not found", id="missing_model_file"),
    pytest.param("""
        input x: f32[1, 4]
        model m = jax "models.py:boom"
        task y = m(x)
        output y
    """, "E0303", "model m", 0, "ValueError: boom: the model refuses", id="function_that_raises"),
    pytest.param("""
        input x: f32[1, 4]
        model m = jax "models.py:dense" weights "missing.npz"
        task y = m(x)
        output y
    """, "E0307", '"missing.npz"', 0, "not found", id="missing_weights_file"),
    pytest.param("""
        input x: f32[1, 4]
        model m = jax "models.py:dense" weights "corrupt.npz"
        task y = m(x)
        output y
    """, "E0307", '"corrupt.npz"', 0, "cannot load weights 'corrupt.npz'", id="corrupt_npz"),
    pytest.param("""
        input x: f32[1, 4]
        model m = jax "models.py:dense" weights "w.bin"
        task y = m(x)
        output y
    """, "E0307", '"w.bin"', 0, "unknown format '.bin'", id="unknown_weights_format"),
    pytest.param("""
        input x: f32[1, 4]
        model m = jax "models.py:ident" weights "w.npz"
        task y = m(x)
        output y
    """, "E0111", "task y", 0, "takes 0 inputs", id="weights_for_a_function_that_takes_none"),
    pytest.param("""
        input x: f32[2]
        model g = mlir "garbage.mlir"
        task y = g(x)
        output y
    """, "E0302", "model g", 0, "garbage.mlir:2:", id="unparsable_mlir"),
    pytest.param("""
        input x: f32[1, 4]
        model g = mlir "nomain.mlir"
        task y = g(x)
        output y
    """, "E0304", "model g", 0, "main", id="mlir_without_main"),
    pytest.param("""
        input x: f32[1, 4]
        model g = mlir "dynamic.mlir"
        task y = g(x)
        output y
    """, "E0304", "model g", 0, "dynamic", id="mlir_with_a_dynamic_signature"),
    pytest.param("""
        input x: f32[1, 4]
        model t = jax "models.py:two"
        task a = t(x, c)
        task b = t(x, a)
        task c = t(x, b)
        output c
    """, "E0401", "task a", 0, "a -> b -> c -> a", id="cycle_through_data"),
    pytest.param("""
        input x: f32[1, 4]
        model t = jax "models.py:two"
        task pre = t(x, n)
        loop l max 2 until q > 0 {
          carry c = pre then n
          task n = t(c, x)
          task q = max(n)
        }
        output q
    """, "E0401", "task pre", 0, "pre -> l -> pre", id="cycle_through_a_loop"),
    pytest.param("""
        input x: f32[1, 4]
        model t = jax "models.py:two"
        task a = t(x, a)
        output a
    """, "E0401", "task a", 0, "a -> a", id="self_use"),
    pytest.param("""
        input x: f32[1, 4]
        model i = jax "models.py:ident"
        loop l max 2 until q > 0 {
          carry c = x then n
          task n = i(c)
          task q = max(n)
        }
        task leak = max(c)
        output q, leak
    """, "E0404", "c)", 1, "only visible inside loop 'l'", id="carry_used_outside_its_loop"),
    pytest.param("""
        input x: f32[1, 4]
        task m = maxx(x)
        output m
    """, "E0103", "maxx", 0, "maxx", id="unknown_callee"),
    pytest.param("""
        input x: f32[1, 4]
        model t = jax "models.py:two"
        task y = t(x, 3)
        output y
    """, "E0112", "3)", 0, "constant", id="constant_passed_to_a_model"),
    pytest.param("""
        input x: f32[1, 4]
        model i = jax "models.py:ident"
        task y = i(x) retry 3
        output y
    """, "E0109", "retry 3", 0, "`retry` is not allowed", id="retry_on_a_model_task"),
]


@pytest.mark.parametrize(("body", "code", "needle", "nth", "contains"), CASES)
def test_semantic_error(workdir: Path, body: str, code: str, needle: str, nth: int, contains: str) -> None:
    check(workdir, body, code, needle, nth, contains=contains)
