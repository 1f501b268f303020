"""Measured choice among a module's candidate builds, with real IREE compiles and runs (issue 24).

One small conv module (tests/compiler/data/conv.mlir) built plain and with im2col for x86_64-avx2:
planc measures at compile time when it may, else the bundle carries the candidates and planrt
measures on its first load on a host, caches the choice per host and bundle, and a flag skips it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from planc.compiler.bundle.build import BuildOptions, build_bundle
from planc.compiler.codegen.iree import compile_module
from planc.compiler.codegen.targets import Target
from planc.runtime import load
from planc.runtime.engine.choice import host_key
from planc.runtime.engine.measure import Build, measure
from planc.runtime.host.detect import detect

CONV = Path(__file__).parents[1] / "compiler" / "data" / "conv.mlir"
TARGET = Target.X86_64_AVX2

pytestmark = pytest.mark.skipif(not TARGET.requires <= detect(cuda=False).capabilities,
                                reason="needs an x86-64 host with AVX2")

PLAN = """plan convs {
  target x86_64-avx2
  input x: f32[1, 8, 32, 32]
  model conv = mlir "conv.mlir"
  task y = conv(x)
  output y
}
"""


@pytest.fixture
def plan(tmp_path, monkeypatch):
    monkeypatch.setenv("PLANRT_CHOICES_DIR", str(tmp_path / "choices"))
    shutil.copy(CONV, tmp_path / "conv.mlir")
    (tmp_path / "convs.plan").write_text(PLAN)
    return tmp_path / "convs.plan"


def _variant(bundle: Path) -> dict:
    import zipfile

    manifest = json.loads(zipfile.ZipFile(bundle).read("manifest.json"))
    (mod,) = manifest["modules"].values()
    return mod["variants"][TARGET.value]


def _run(path: Path, **kw) -> tuple[np.ndarray, object]:
    p = load(path, **kw)
    x = np.random.default_rng(1).random((1, 8, 32, 32), dtype=np.float32)
    y = p.run(x=x).outputs["y"].value
    (choice,) = p.choices.values()
    return np.asarray(y), choice


def _reference() -> np.ndarray:
    """conv.mlir in numpy: tanh(conv(x, w)), NCHW x HWIO, stride 1, SAME padding."""
    x = np.random.default_rng(1).random((1, 8, 32, 32), dtype=np.float32).astype(np.float64)
    w = (np.arange(3 * 3 * 8 * 16).reshape(3, 3, 8, 16) % 7 - 3) / 10.0
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    y = sum(np.einsum("bchw,co->bohw", xp[:, :, i:i + 32, j:j + 32], w[i, j]) for i in range(3) for j in range(3))
    return np.tanh(y)


def test_compile_time_choice_on_this_host(plan, tmp_path, capsys):
    out = tmp_path / "c.planb"
    build_bundle(plan, out, options=BuildOptions(progress=None, candidates="im2col"))
    v = _variant(out)
    assert v["choice"]["host"] == host_key(detect(cuda=False))
    assert set(v["choice"]["seconds"]) == {"plain/local-sync", "plain/local-task", "im2col/local-sync",
                                           "im2col/local-task"}
    assert all(s is not None and s > 0 for s in v["choice"]["seconds"].values())
    assert v["reference"] == "plain/local-sync" and v["candidates"][0]["name"] == "plain/local-sync"
    y, choice = _run(out)
    assert choice.by == "compile" and choice.chosen == v["choice"]["chosen"]
    np.testing.assert_allclose(y, _reference(), rtol=1e-4, atol=1e-5)
    _, kept = _run(out, measure=False)  # planc's choice here costs no measuring: the flag keeps it
    assert kept.by == "compile"
    from planc.compiler.cli import main as planc_main

    assert planc_main(["explain", str(plan), "--bundle", str(out)]) == 0
    shown = capsys.readouterr().out
    assert f"candidates (chosen {choice.chosen} at compile time" in shown and f"* {choice.chosen}" in shown
    assert "with the chosen builds' measured times" in shown


def test_the_schedule_prices_a_measured_module_at_its_measured_time(plan, tmp_path):
    """The compile-time measurement reaches the schedule: the module's slot lasts its chosen
    build's measured seconds, not the cost model's estimate, and the makespan follows."""
    import zipfile

    res = build_bundle(plan, tmp_path / "s.planb", options=BuildOptions(progress=None, candidates="im2col"))
    manifest = json.loads(zipfile.ZipFile(tmp_path / "s.planb").read("manifest.json"))
    v = _variant(tmp_path / "s.planb")
    chosen = v["choice"]["seconds"][v["choice"]["chosen"]]
    (sched,) = manifest["schedules"].values()
    assert sched["measured"] == {"g0": {TARGET.value: chosen}}
    assert sched["finish"]["g0"] - sched["start"]["g0"] == pytest.approx(chosen)
    assert sched["makespan"] >= chosen and sched["estimated_makespan"] != sched["makespan"]
    assert res.graph.info.schedule.makespan == sched["makespan"]


def test_first_load_measures_caches_and_the_flag_skips(plan, tmp_path):
    out = tmp_path / "m.planb"
    build_bundle(plan, out, options=BuildOptions(progress=None, candidates="im2col", measure=False))
    v = _variant(out)
    assert "choice" not in v and len(v["candidates"]) == 4
    insp = subprocess.run([sys.executable, "-m", "planc.runtime.cli", "inspect", str(out)],
                          capture_output=True, text=True, check=True)
    assert "not measured on this host yet" in insp.stdout
    _, first = _run(out)
    assert first.by == "measured" and set(first.seconds) == {c["name"] for c in v["candidates"]}
    assert list((tmp_path / "choices").glob("*/*.json"))
    y, again = _run(out)
    assert again.by == "cache" and again.chosen == first.chosen
    np.testing.assert_allclose(y, _reference(), rtol=1e-4, atol=1e-5)
    _, off = _run(out, measure=False)
    assert off.by == "off" and off.path == "modules/g0/x86_64-avx2.vmfb"
    insp = subprocess.run([sys.executable, "-m", "planc.runtime.cli", "inspect", str(out)],
                          capture_output=True, text=True, check=True)
    assert f"build: {first.chosen} (measured on a first load here)" in insp.stdout


def test_a_candidate_that_computes_something_else_is_refused():
    text = CONV.read_text()
    plain = compile_module(text, TARGET)
    wrong = compile_module(text.replace("stablehlo.tanh", "stablehlo.logistic"), TARGET)
    got = measure([Build("plain/local-sync", plain, "local-sync"), Build("wrong/local-sync", wrong, "local-sync")],
                  ["f32"], [[1, 8, 32, 32]], ["f32"], reference="plain/local-sync", budget_s=0.05)
    assert got["plain/local-sync"].seconds is not None
    assert got["wrong/local-sync"].seconds is None and got["wrong/local-sync"].note.startswith("mismatch")


def _conv_onnx() -> bytes:
    """conv.mlir as an ONNX graph (OIHW weights, pads 1, Tanh)."""
    from onnx import TensorProto, helper, numpy_helper

    w = ((np.arange(3 * 3 * 8 * 16).reshape(3, 3, 8, 16) % 7 - 3) / 10.0).astype(np.float32).transpose(3, 2, 0, 1)
    g = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Tanh", ["c"], ["y"])],
        "conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 32, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16, 32, 32])],
        [numpy_helper.from_array(np.ascontiguousarray(w), "w")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def test_the_onnx_runtime_candidate_is_measured_beside_iree():
    pytest.importorskip("onnxruntime")
    from planc.compiler.codegen.ort_form import ort_format
    from planc.runtime.engine.measure import load_build

    ort_bytes = ort_format(_conv_onnx(), "ort", name="conv")
    assert ort_bytes[4:8] == b"ORTM"  # the ORT format's flatbuffer identifier
    plain = compile_module(CONV.read_text(), TARGET)
    got = measure([Build("plain/local-sync", plain, "local-sync"), Build("ort", ort_bytes, "ort")],
                  ["f32"], [[1, 8, 32, 32]], ["f32"], reference="plain/local-sync", budget_s=0.05)
    assert got["ort"].seconds is not None, got["ort"].note
    mod = load_build(Build("ort", ort_bytes, "ort"), {}, ["f32"], ["f32"])
    x = np.random.default_rng(1).random((1, 8, 32, 32), dtype=np.float32)
    np.testing.assert_allclose(mod(x)[0], _reference(), rtol=1e-4, atol=1e-5)
    (view,) = mod.invoke([mod.device.to_device(x, "f32")])  # the executor's path: IREE buffers in and out
    np.testing.assert_allclose(mod.device.to_host(view, "f32"), _reference(), rtol=1e-4, atol=1e-5)


ONNX_PLAN = """plan convs {
  target x86_64-avx2
  input x: f32[1, 8, 32, 32]
  model conv = onnx "conv.onnx"
  task y = conv(x)
  output y
}
"""


def test_an_onnx_module_carries_ort_forms_and_runs_without_onnxruntime(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    import planc.runtime.engine.choice as choice_mod

    monkeypatch.setenv("PLANRT_CHOICES_DIR", str(tmp_path / "choices"))
    (tmp_path / "conv.onnx").write_bytes(_conv_onnx())
    (tmp_path / "convs.plan").write_text(ONNX_PLAN)
    out = tmp_path / "o.planb"
    build_bundle(tmp_path / "convs.plan", out, options=BuildOptions(progress=None, candidates="im2col", measure=False))
    v = _variant(out)
    names = [c["name"] for c in v["candidates"]]
    assert v["reference"] == names[0] and "ort" in names and "ort-nchwc" not in names  # nchwc: host's target only
    assert next(c for c in v["candidates"] if c["name"] == "ort")["path"].endswith(".ort")
    monkeypatch.setattr(choice_mod, "ort_available", lambda: False)  # a runtime without planc[ort]
    y, bare = _run(out)
    assert bare.by == "measured" and bare.driver != "ort" and "ort" not in bare.seconds
    np.testing.assert_allclose(y, _reference(), rtol=1e-4, atol=1e-5)
