"""Pass pipeline: strings, instrumentation, contracts; model loading; the `planc compile` command."""

from __future__ import annotations

import dataclasses
import io
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from planc.compiler.cli import main
from planc.compiler.ir.graph import ComputeTask, ModelDecl, ModelKind, PlanGraph, ValueRef
from planc.compiler.ir.printer import print_ir
from planc.compiler.models.load import ModelCache, ModelError, load_jax_model
from planc.compiler.passes import PASSES, Build, InferTypes, Verify
from planc.compiler.pipeline import (
    PassCrash,
    PassFailed,
    PipelineError,
    PipelineOptions,
    compile_file,
    parse_pipeline,
    run_pipeline,
)
from planc.dsl.ast import DType, TensorType
from planc.dsl.diagnostics import DiagnosticError
from planc.dsl.parser import parse, parse_file

ROOT = Path(__file__).resolve().parents[3]
DEFECTS = ROOT / "examples" / "defects" / "defects.plan"
SENSORS = ROOT / "examples" / "sensors" / "sensors.plan"


@pytest.fixture(scope="module")
def defects_plan():
    return parse_file(DEFECTS).plans[0]


# -- pipeline strings ----------------------------------------------------------------------
def test_parse_pipeline_with_options() -> None:
    passes = parse_pipeline(" build , verify,infer-types{facts=false} ")
    assert passes == (Build(), Verify(), InferTypes(facts=False))


def test_unknown_pass_lists_the_known_ones() -> None:
    with pytest.raises(PipelineError, match=r"unknown pass 'merg', expected one of: build, infer-types, merge, "
                                            r"schedule, verify"):
        parse_pipeline("build,merg")


def test_unknown_option_lists_the_pass_options() -> None:
    with pytest.raises(PipelineError, match=r"unknown option 'fact' for pass 'infer-types', expected one of: facts"):
        parse_pipeline("infer-types{fact=1}")
    with pytest.raises(PipelineError, match=r"expected one of: \(none\)"):
        parse_pipeline("verify{x=1}")


@pytest.mark.parametrize("text", ["build,", "build{", "infer-types{facts=maybe}", "", "a b"])
def test_malformed_pipelines(text: str) -> None:
    with pytest.raises(PipelineError):
        parse_pipeline(text)


def test_options_are_typed_by_the_pass_fields() -> None:
    @dataclass(frozen=True)
    class Merge:
        name: ClassVar[str] = "merge"
        max_group: int = 8
        budget: float = 1.0

        def run(self, graph: PlanGraph) -> PlanGraph:
            return graph

    (m,) = parse_pipeline("merge{max-group=4, budget=2.5}", {"merge": Merge})
    assert m == Merge(max_group=4, budget=2.5)
    with pytest.raises(PipelineError, match="expected int, got 'four'"):
        parse_pipeline("merge{max-group=four}", {"merge": Merge})


def test_build_must_come_first(defects_plan) -> None:
    with pytest.raises(PipelineError, match="must begin with 'build'"):
        run_pipeline(defects_plan, parse_pipeline("verify"))
    graph = run_pipeline(defects_plan, parse_pipeline("build")).graph
    with pytest.raises(PipelineError, match="not from IR"):
        run_pipeline(graph, parse_pipeline("build,verify"))


# -- running and instrumentation -----------------------------------------------------------
def test_print_ir_after_dump_dir_and_timings(defects_plan, tmp_path: Path) -> None:
    stream = io.StringIO()
    options = PipelineOptions(print_ir_after=frozenset({"verify"}), time_passes=True, dump_dir=tmp_path,
                              verify_each=True, stream=stream)
    result = run_pipeline(defects_plan, parse_pipeline("build,verify,infer-types"), options)
    out = stream.getvalue()
    assert out.count("// -----// IR Dump After") == 1 and "IR Dump After verify (defects)" in out
    assert "Pass execution timing report (defects)" in out and "verify (after infer-types)" in out
    assert [t.name for t in result.timings][:2] == ["build", "verify (after build)"]
    files = sorted(p.name for p in (tmp_path / "defects").iterdir())
    assert files == ["00-build.ir", "01-verify.ir", "02-infer-types.ir"]
    assert (tmp_path / "defects" / "02-infer-types.ir").read_text() == print_ir(result.graph)


@dataclass(frozen=True)
class _Dangle:
    """A buggy pass: rewires a task to a value nobody produces."""

    name: ClassVar[str] = "dangle"

    def run(self, graph: PlanGraph) -> PlanGraph:
        boxes = graph.task("boxes")
        return graph.replace_task(dataclasses.replace(boxes, args=(ValueRef("ghost"),)))


@dataclass(frozen=True)
class _Explode:
    name: ClassVar[str] = "explode"

    def run(self, graph: PlanGraph) -> PlanGraph:
        raise RuntimeError("kaboom")


def test_verify_each_catches_a_bad_pass_and_names_it(defects_plan) -> None:
    registry = {**PASSES, "dangle": _Dangle}
    passes = parse_pipeline("build,verify,dangle", registry)
    with pytest.raises(PassFailed) as e:
        run_pipeline(defects_plan, passes, PipelineOptions(verify_each=True))
    assert e.value.context == "in pass 'verify' (after 'dangle')"
    assert [d.code for d in e.value.diagnostics] == ["E0402"]
    run_pipeline(defects_plan, passes)  # without --verify-each the bad IR goes through


def test_a_crashing_pass_is_reported_with_its_context(defects_plan) -> None:
    passes = parse_pipeline("build,verify,explode", {**PASSES, "explode": _Explode})
    with pytest.raises(PassCrash, match=r"internal error in pass 'explode' \(after 'verify'\): RuntimeError: kaboom"):
        run_pipeline(defects_plan, passes)


def test_passes_do_not_mutate_their_input(defects_plan) -> None:
    built = Build().run(defects_plan)
    before = print_ir(built)
    typed = InferTypes(facts=False).run(Verify().run(built))
    assert print_ir(built) == before and built.task("boxes").results == ()
    assert typed.task("boxes").results == (TensorType(DType.F32, (1, 16)),)


def test_front_check_runs_before_the_pipeline(tmp_path: Path) -> None:
    src = "plan p { input x: f32[] task t = max(x) output t }\nplan p { input y: f32[] output y }\n"
    (tmp_path / "dup.plan").write_text(src)
    with pytest.raises(DiagnosticError) as e:
        compile_file(tmp_path / "dup.plan", parse_pipeline("build,verify"))
    assert "E0114" in [d.code for d in e.value.diagnostics]


# -- model loading -------------------------------------------------------------------------
def _decl(path: Path, function: str, weights: Path | None = None) -> ModelDecl:
    return ModelDecl(function, ModelKind.JAX, path, function, weights)


def test_loaded_model_computes_with_its_weights_bound() -> None:
    folder = ROOT / "examples" / "sensors"
    decl = _decl(folder / "models.py", "vib_net", folder / "sensors.npz")
    x = TensorType(DType.F32, (8, 128))
    loaded = load_jax_model(decl, [x], cache=ModelCache(), facts=True)
    assert loaded.results == (TensorType(DType.F32, (8, 16)),) and not loaded.tuple_result
    assert loaded.facts is not None and loaded.facts.flops > 2 * 8 * 128 * 64
    w = np.load(folder / "sensors.npz")
    v = np.random.default_rng(0).normal(size=(8, 128)).astype(np.float32)
    expected = np.tanh(np.maximum(v @ w["v_w1"], 0) @ w["v_w2"])
    np.testing.assert_allclose(np.asarray(loaded.fn(v)), expected, rtol=1e-4, atol=1e-5)


def test_model_loading_leaves_no_state_behind(tmp_path: Path) -> None:
    (tmp_path / "helper_for_planc_test.py").write_text("SCALE = 3.0\n")
    (tmp_path / "m.py").write_text("import helper_for_planc_test as h\n\ndef f(x):\n    return x * h.SCALE\n")
    path_before, modules_before = list(sys.path), set(sys.modules)
    cache = ModelCache()
    a = load_jax_model(_decl(tmp_path / "m.py", "f"), [TensorType(DType.F32, (2,))], cache=cache, facts=False)
    assert sys.path == path_before and set(sys.modules) == modules_before
    assert float(a.fn(np.ones(2, np.float32))[0]) == 3.0
    again = load_jax_model(_decl(tmp_path / "m.py", "f"), [TensorType(DType.F32, (2,))], cache=cache, facts=False)
    assert again is a  # cached per (model, signature)


def test_a_changed_model_file_is_reloaded(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_text("def f(x):\n    return x\n")
    cache, t = ModelCache(), [TensorType(DType.F32, (4,))]
    assert load_jax_model(_decl(path, "f"), t, cache=cache, facts=False).results[0].shape == (4,)
    path.write_text("def f(x):\n    return x[:2], x\n")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    again = load_jax_model(_decl(path, "f"), t, cache=cache, facts=False)
    assert again.tuple_result and [r.shape for r in again.results] == [(2,), (4,)]


def test_i64_inputs_keep_their_dtype(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("def f(x):\n    return x + 1\n")
    loaded = load_jax_model(_decl(tmp_path / "m.py", "f"), [TensorType(DType.I64, (3,))], cache=ModelCache(),
                            facts=False)
    assert loaded.results == (TensorType(DType.I64, (3,)),)


def test_errors_are_cached_too(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("def f(x):\n    raise KeyError('nope')\n")
    cache = ModelCache()
    for _ in range(2):
        with pytest.raises(ModelError, match="KeyError: 'nope'"):
            load_jax_model(_decl(tmp_path / "m.py", "f"), [TensorType(DType.F32, ())], cache=cache, facts=False)
    assert len(cache.loaded) == 1


# -- planc compile ---------------------------------------------------------------------------
def test_compile_prints_the_ir_of_every_plan(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compile", str(SENSORS), "--verify-each"]) == 0
    out = capsys.readouterr().out
    assert out.count("plan ") == 2 and "%worst_unit = builtin argmax(%health) : (f32[8]) -> i32[]" in out


def test_compile_one_plan_to_a_file_with_instrumentation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "vib.ir"
    rc = main(["compile", str(SENSORS), "--plan", "vib_screen", "-o", str(out), "--print-ir-after", "build",
               "--time-passes", "--dump-dir", str(tmp_path / "dump")])
    err = capsys.readouterr().err
    assert rc == 0 and out.read_text().startswith("plan vib_screen {")
    assert "IR Dump After build (vib_screen)" in err and "Total Execution Time" in err
    assert (tmp_path / "dump" / "vib_screen" / "02-infer-types.ir").read_text() == out.read_text()


def test_compile_emit_ast(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compile", str(DEFECTS), "--emit", "ast"]) == 0
    out = capsys.readouterr().out
    assert "Task  @16:3\n" in out and "callee: max" in out and "When  @17:37" in out and "Compare  @17:42" in out


def test_compile_reports_diagnostics_with_the_failing_pass(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    plan = tmp_path / "bad.plan"
    plan.write_text("plan p {\n  input x: f32[2]\n  model m = jax \"m.py:f\"\n  task y = m(x)\n  output y\n}\n")
    (tmp_path / "m.py").write_text("def f(x):\n    return x @ x @ x.T\n")
    assert main(["compile", str(plan)]) == 1
    err = capsys.readouterr().err
    assert "error[E0303]: model 'm' cannot be traced with (f32[2])" in err
    assert f"--> {plan}:3:3" in err and "in pass 'infer-types' (after 'verify')" in err
    assert "Traceback" not in err


def test_compile_rejects_bad_pipeline_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compile", str(DEFECTS), "-p", "build,bogus"]) == 2
    assert "unknown pass 'bogus', expected one of:" in capsys.readouterr().err
    assert main(["compile", str(DEFECTS), "-p", "build,verify", "--print-ir-after", "infer-types"]) == 2
    assert "not in the pipeline" in capsys.readouterr().err


def test_unused_values_are_warned_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = tmp_path / "w.plan"
    plan.write_text("plan p {\n  input x: f32[2]\n  task a = max(x)\n  task b = min(x)\n  output a\n}\n")
    assert main(["compile", str(plan), "-p", "build,verify"]) == 0
    err = capsys.readouterr().err
    assert "warning[E0403]: builtin task 'b' contributes to no output" in err


def test_build_makes_one_node_per_task_and_a_loop_node(tmp_path: Path) -> None:
    src = (ROOT / "examples" / "agent" / "agent.plan").read_text()
    g = Build().run(parse(src, str(ROOT / "examples" / "agent" / "agent.plan")).plans[0])
    loop = g.task("refine")
    assert [str(v) for v in loop.values()] == ["revised", "quality"]  # type: ignore[attr-defined]
    assert [str(a) for a in loop.args] == ["customer", "emb"]
    assert g.producer("revised") == "refine" and isinstance(loop.body.task("revised"), ComputeTask)  # type: ignore[attr-defined]
    assert g.edge("refine", "reply").control and g.models["encode"].path == ROOT / "examples" / "agent" / "models.py"


def test_safetensors_weights(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    save_file({"w": np.full((3, 2), 2.0, np.float32)}, str(tmp_path / "w.safetensors"))
    (tmp_path / "m.py").write_text("def f(params, x):\n    return x @ params['w']\n")
    loaded = load_jax_model(_decl(tmp_path / "m.py", "f", tmp_path / "w.safetensors"),
                            [TensorType(DType.F32, (1, 3))], cache=ModelCache(), facts=False)
    assert loaded.results == (TensorType(DType.F32, (1, 2)),)
    np.testing.assert_allclose(np.asarray(loaded.fn(np.ones((1, 3), np.float32))), [[6.0, 6.0]])


LOOPS = """
plan p {
  input x: f32[4]
  task pre = max(x)
  loop a max 2 until qa > 0 {
    carry ca = x then ra
    task ra = mean2(ca)
    task qa = max(ra)
  }
  loop b max 2 until qb > 0 {
    carry cb = ra then rb
    task rb = mean2(cb) after pre
    task qb = max(rb)
  }
  output qb
}
"""


def test_loops_export_what_others_use_and_lift_after(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("def f(x):\n    return x * 0.5\n")
    src = LOOPS.replace("task pre", 'model mean2 = jax "m.py:f"\n  task pre')
    plan = parse(src, str(tmp_path / "loops.plan")).plans[0]
    g = run_pipeline(plan, parse_pipeline("build,verify,infer-types{facts=false}"),
                     PipelineOptions(verify_each=True)).graph
    a, b = g.task("a"), g.task("b")
    assert [str(v) for v in a.values()] == ["ra"] and [str(v) for v in b.values()] == ["qb"]
    assert b.after == ("pre",) and g.edge("pre", "b").control and g.edge("a", "b").values == ("ra",)
    assert b.carries[0].type == TensorType(DType.F32, (4,))  # type: ignore[attr-defined]


def test_infer_types_without_verify_reports_a_cycle(tmp_path: Path) -> None:
    src = "plan p {\n  input x: f32[]\n  task a = max(b)\n  task b = min(a)\n  output a\n}\n"
    plan = parse(src, str(tmp_path / "c.plan")).plans[0]
    with pytest.raises(PassFailed) as e:
        run_pipeline(plan, parse_pipeline("build,infer-types"))
    assert [d.code for d in e.value.diagnostics] == ["E0401"] and e.value.pass_name == "infer-types"
