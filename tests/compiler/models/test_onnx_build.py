"""ONNX models exported from PyTorch (convnets and transformer encoders, opsets 13..20, legacy and dynamo
exporters) compile with IREE inside a plan with jax tasks, run through planc.runtime, and match ONNX
Runtime within 1e-4 relative. About 60 s of iree-compile on 2 cores with a cold cache."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from onnx_support import CONVS, ENCODERS, IMG, MODELS, SEQ, host_target, ort_run, rel_err, write_plan
from planc.compiler.bundle.build import BuildOptions, build_bundle
from planc.compiler.ir.graph import GroupTask

pytestmark = [pytest.mark.iree, pytest.mark.slow]

JAX_MODELS = """\
import jax.numpy as jnp

def normalize(x):
    return (x - 0.5) * 2.0
"""


def _plan_text(target: str) -> str:
    convs = "\n".join(f'  model {m} = onnx "{m}.onnx"\n  task t_{m} = {m}(pre)' for m in CONVS)
    encs = "\n".join(f'  model {m} = onnx "{m}.onnx"\n  task t_{m} = {m}(seq)' for m in ENCODERS)
    outs = [f"t_{m}" for m in CONVS] + [f"t_{m}.{i}" for m in ENCODERS for i in (0, 1)]
    return f"""\
plan zoo {{
  target {target}
  input img: f32{list(IMG)}
  input seq: f32{list(SEQ)}
  model normalize = jax "models.py:normalize"
  model ext = onnx "ext.onnx"
  model off = onnx "off.onnx"
  task pre = normalize(img)
{convs}
{encs}
  task t_ext = ext(pre)
  task t_off = off(pre)
  task top = max(t_ext)
  output {", ".join(outs)}, t_ext, t_off, top
}}
"""


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx-zoo")
    (folder / "models.py").write_text(JAX_MODELS)
    # One model with its weights as ONNX external data beside it.
    onnx.save(onnx.load(MODELS / "conv_op20.onnx"), folder / "ext.onnx", save_as_external_data=True,
              location="ext.weights", size_threshold=0)
    # The same convnet with other weights: a stand-in for a build that computes something else.
    off = onnx.load(MODELS / "conv_op17.onnx")
    for t in off.graph.initializer:
        t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t) * 1.5, t.name))
    onnx.save(off, folder / "off.onnx")
    path = write_plan(folder, _plan_text(host_target()), name="zoo", files=tuple(CONVS + ENCODERS))
    built = build_bundle(path, folder / "zoo.planb", options=BuildOptions(progress=None))
    return folder, built


def test_every_model_matches_onnx_runtime(zoo):
    from planc.runtime import load

    folder, built = zoo
    rng = np.random.default_rng(7)
    img, seq = rng.random(IMG, dtype=np.float32), rng.standard_normal(SEQ).astype(np.float32)
    out = load(built.path).run(img=img, seq=seq).outputs
    pre = (img - 0.5) * 2.0
    for m in CONVS:
        assert rel_err(out[f"t_{m}"].value, ort_run(folder / f"{m}.onnx", pre)[0]) < 1e-4, m
    for m in ENCODERS:
        want = ort_run(folder / f"{m}.onnx", seq)
        for i in (0, 1):
            assert rel_err(out[f"t_{m}.{i}"].value, want[i]) < 1e-4, (m, i)
    ext = ort_run(folder / "ext.onnx", pre)[0]
    assert rel_err(out["t_ext"].value, ext) < 1e-4
    np.testing.assert_allclose(out["top"].value, ext.max(), rtol=1e-5)


def test_onnx_tasks_are_groups_of_one_and_jax_tasks_merge_around_them(zoo):
    _, built = zoo
    groups = [t for t in built.graph.walk() if isinstance(t, GroupTask)]
    onnx_groups = [g for g in groups if any(getattr(m, "model", "") in (*CONVS, *ENCODERS, "ext")
                                             for m in g.members)]
    assert len(onnx_groups) == len(CONVS) + len(ENCODERS) + 1
    assert all(len(g.members) == 1 for g in onnx_groups)
    modules = built.manifest["modules"]
    onnx_mlir = [built.members[modules[g.name]["mlir"]].decode() for g in onnx_groups]
    assert all("torch.operator" in text and "@main" in text for text in onnx_mlir)  # IREE's ONNX import


def test_cross_targets_compile(tmp_path):
    """The other CPU targets build too (run natively where the host can, and under qemu in tests/emulation)."""
    path = write_plan(tmp_path, """\
        plan cross {
          target x86_64-avx2, x86_64-avx512, aarch64-neon
          input img: f32[1, 3, 16, 16]
          input seq: f32[1, 8, 16]
          model conv = onnx "conv_op13.onnx"
          model enc = onnx "encoder_dynamo_op18.onnx"
          task c = conv(img)
          task e = enc(seq)
          output c, e.1
        }
        """, files=("conv_op13", "encoder_dynamo_op18"))
    built = build_bundle(path, None, options=BuildOptions(progress=None))
    for rec in built.manifest["modules"].values():
        assert sorted(rec["variants"]) == ["aarch64-neon", "x86_64-avx2", "x86_64-avx512"]


def test_a_build_that_differs_from_onnx_runtime_is_an_error_naming_module_and_target(zoo):
    """The compile-time gate on real builds: give conv_op17's module the build of the same net
    with other weights (what a silent miscompile looks like) and the check must refuse it."""
    from planc.compiler.bundle.onnx_verify import verify_onnx_builds
    from planc.compiler.codegen.targets import Target

    _, built = zoo
    modules = {m.name: m for m in built.modules}
    by_model = {g.members[0].model: g.name for g in built.graph.walk() if isinstance(g, GroupTask)
                and len(g.members) == 1 and hasattr(g.members[0], "model")}
    target = Target.parse(host_target())
    vmfb = {name: built.members[f"modules/{name}/{target.value}.vmfb"] for name in modules}
    good, bad = by_model["conv_op17"], by_model["off"]
    archive = built.members.get("params/weights.irpa")  # the weights the modules load (issue 29)
    ok = verify_onnx_builds(built.graph, [modules[good]], [target], {(good, target): vmfb[good]}, archive=archive)
    assert not ok.diagnostics and ok.errors[(good, target.value)] < 1e-6
    checked = verify_onnx_builds(built.graph, [modules[good]], [target], {(good, target): vmfb[bad]},
                                 archive=archive)
    [diag] = checked.diagnostics
    assert diag.code == "E0502"
    assert f"the {target.value} build of ONNX model 'conv_op17' (module '{good}') differs" in diag.message


def test_a_build_that_does_not_run_is_an_error_too(zoo):
    from planc.compiler.bundle.onnx_verify import verify_onnx_builds
    from planc.compiler.codegen.targets import Target

    _, built = zoo
    group = next(g.name for g in built.graph.walk() if isinstance(g, GroupTask)
                 and getattr(g.members[0], "model", "") == "conv_op13")
    module = next(m for m in built.modules if m.name == group)
    target = Target.parse(host_target())
    [diag] = verify_onnx_builds(built.graph, [module], [target], {(group, target): b"not a module"}).diagnostics
    assert diag.code == "E0502" and "fails on sample inputs that ONNX Runtime runs" in diag.message
