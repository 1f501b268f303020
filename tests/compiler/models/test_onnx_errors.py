"""`model NAME = onnx "..."` in the language and in `planc check`: types from the file, and a clear
diagnostic (never a traceback) for each kind of bad file or call. No IREE compile here (about 10 s)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx_support import MODELS, write_plan
from planc.compiler.cli import main as planc_main
from planc.compiler.passes import Build, InferTypes, Verify
from planc.compiler.pipeline import PipelineOptions, run_pipeline
from planc.dsl.parser import parse_file

PLAN = """\
plan p {
  input img: %s
  model net = onnx "%s"
  task y = net(img)
  output y
}
"""


def _check(capsys, path) -> tuple[int, str]:
    rc = planc_main(["check", str(path)])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return rc, err


def _typed(path):
    plan = parse_file(path).plans[0]
    return run_pipeline(plan, (Build(), Verify(), InferTypes(facts=False)), PipelineOptions()).graph


def _tiny(path, *, op="Relu", domain="", opset=17, attrs=None, extra_inits=(), dims=("n", 4)) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(dims))
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    node = helper.make_node(op, ["x", *[t.name for t in extra_inits]], ["y"], name=f"{op.lower()}_7",
                            domain=domain, **(attrs or {}))
    opsets = [helper.make_opsetid("", opset)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    graph = helper.make_graph([node], "tiny", [x], [y], initializer=list(extra_inits))
    onnx.save(helper.make_model(graph, opset_imports=opsets), path)


def test_outputs_flow_into_type_inference_tuple_parts(tmp_path):
    path = write_plan(tmp_path, """\
        plan p {
          input seq: f32[3, 5, 16]
          model enc = onnx "encoder_op17.onnx"
          task e = enc(seq)
          task m = max(e.1)
          output e.0, m
        }
        """, files=("encoder_op17",))
    graph = _typed(path)
    e = graph.task("e")
    assert e.tuple_result and [str(t) for t in e.results] == ["f32[3, 5, 16]", "f32[3, 4]"]
    assert str(graph.task("m").results[0]) == "f32[]"


@pytest.mark.parametrize("given, why", [
    ("f32[2, 4, 16, 16]", "dim 1 is 4, the file fixes it at 3"),
    ("f32[3, 16, 16]", "rank 3 is not 4"),
    ("i32[2, 3, 16, 16]", "dtype i32 is not f32"),
])
def test_check_reports_input_mismatch_with_span_and_declared_shape(tmp_path, capsys, given, why):
    path = write_plan(tmp_path, PLAN % (given, "conv_op17.onnx"), files=("conv_op17",))
    rc, err = _check(capsys, path)
    assert rc == 1
    assert "error[E0301]" in err and why in err
    assert "input 'x' is declared f32[batch, 3, height, width] in 'conv_op17.onnx'" in err
    assert "p.plan:4:16" in err  # the argument `img` in `net(img)`


def test_check_is_clean_for_a_good_plan(tmp_path, capsys):
    path = write_plan(tmp_path, PLAN % ("f32[1, 3, 24, 40]", "conv_op13.onnx"), files=("conv_op13",))
    assert _check(capsys, path) == (0, "checked 1 file: no problems\n")


def _bad_case(tmp_path, kind: str) -> str:
    """Writes bad.onnx of one kind; returns the message planc check must print."""
    bad = tmp_path / "bad.onnx"
    if kind == "truncated":
        data = (MODELS / "conv_op17.onnx").read_bytes()
        bad.write_bytes(data[: len(data) // 2])
        return "'bad.onnx' is not a readable ONNX file"
    if kind == "missing":
        return "ONNX file 'bad.onnx' not found"
    if kind == "unsupported op":
        _tiny(bad, op="LpPool", attrs={"kernel_shape": [2]}, dims=("n", 4, 4))
        return "IREE cannot lower ONNX op 'LpPool' (node 'lppool_7', opset 17)"
    if kind == "custom domain":
        _tiny(bad, op="FusedGelu", domain="com.microsoft")
        return "uses op 'com.microsoft.FusedGelu' (node 'fusedgelu_7', opset 17)"
    if kind == "newer opset":
        _tiny(bad, opset=99)
        return "uses ONNX opset 99, newer than supported"
    if kind == "external data":
        model = onnx.load(MODELS / "conv_op17.onnx")
        onnx.save(model, bad, save_as_external_data=True, location="bad.weights", size_threshold=0)
        (tmp_path / "bad.weights").unlink()
        return "external data file 'bad.weights', which is not beside it"
    if kind == "control flow":
        then = helper.make_graph([helper.make_node("Relu", ["x"], ["t"])], "then", [],
                                 [helper.make_tensor_value_info("t", TensorProto.FLOAT, ["n", 4])])
        other = helper.make_graph([helper.make_node("Neg", ["x"], ["e"])], "else", [],
                                  [helper.make_tensor_value_info("e", TensorProto.FLOAT, ["n", 4])])
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])
        nodes = [helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0),
                 helper.make_node("Greater", ["s", "zero"], ["c"]),
                 helper.make_node("If", ["c"], ["y"], name="branch", then_branch=then, else_branch=other)]
        zero = numpy_helper.from_array(np.zeros((), np.float32), "zero")
        graph = helper.make_graph(nodes, "g", [x], [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                                  initializer=[zero])
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), bad)
        return "uses op 'If' (node 'branch', opset 17): control flow on data"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["truncated", "missing", "unsupported op", "custom domain", "newer opset",
                                  "external data", "control flow"])
def test_bad_files_give_a_clear_error(tmp_path, capsys, kind):
    expected = _bad_case(tmp_path, kind)
    shape = {"truncated": "f32[2, 3, 16, 16]", "external data": "f32[2, 3, 16, 16]", "missing": "f32[2, 3, 16, 16]",
             "unsupported op": "f32[2, 4, 4]"}.get(kind, "f32[2, 4]")
    path = write_plan(tmp_path, PLAN % (shape, "bad.onnx"))
    rc, err = _check(capsys, path)
    assert rc == 1, err
    assert expected in err, err
    assert "p.plan:3:3" in err  # at the model's declaration


def test_weights_on_an_onnx_model_is_an_error(tmp_path, capsys):
    path = write_plan(tmp_path, PLAN.replace('"%s"', '"%s" weights "w.npz"') % ("f32[1, 3, 8, 8]", "conv_op17.onnx"),
                      files=("conv_op17",))
    rc, err = _check(capsys, path)
    assert rc == 1 and "E0109" in err and "an onnx model takes no weights file" in err


def test_external_data_beside_the_file_is_read(tmp_path):
    model = onnx.load(MODELS / "conv_op17.onnx")
    onnx.save(model, tmp_path / "ext.onnx", save_as_external_data=True, location="ext.weights", size_threshold=0)
    path = write_plan(tmp_path, PLAN % ("f32[1, 3, 8, 8]", "ext.onnx"))
    assert str(_typed(path).task("y").results[0]) == "f32[1, 4]"


@pytest.mark.parametrize("name", ["conv_op17", "conv_dynamo_op18"])
def test_cost_facts_count_convolutions_and_matmuls_from_shapes(tmp_path, name):
    """Both exporters' graphs of the same convnet cost the same: conv 2*4096*27 + conv 2*1024*72 + gemm 2*8*8."""
    path = write_plan(tmp_path, PLAN % ("f32[2, 3, 16, 16]", f"{name}.onnx"), files=(name,))
    plan = parse_file(path).plans[0]
    facts = run_pipeline(plan, (Build(), Verify(), InferTypes()), PipelineOptions()).graph.task("y").facts
    assert facts.flops - facts.vector_flops == 2 * 4096 * 27 + 2 * 1024 * 72 + 2 * 8 * 8
    assert facts.bytes_accessed > 4 * (2 * 3 * 16 * 16)  # weights and I/O
