"""Issue 5's checks on real builds: every example for all five targets, byte-identical rebuilds,
and a model IREE cannot compile reported at its declaration."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import iree.runtime as rt
import numpy as np
import pytest
from e2e_support import EXAMPLES, PLANS
from planc.compiler.bundle.build import BuildOptions, build_bundle
from planc.runtime.bundle.loader import load_bundle
from planc.runtime.engine.modules import Device, LoadedModule
from planc.runtime.engine.params import parameters_of
from planc.runtime.host.detect import detect, variant_problem

pytestmark = pytest.mark.iree

FIVE = ("x86_64-avx2", "x86_64-avx512", "aarch64-neon", "cuda-sm80", "cuda-sm90")


@pytest.mark.parametrize("file,plan", PLANS, ids=[p for _, p in PLANS])
def test_every_example_compiles_for_all_five_targets(file, plan, tmp_path):
    res = build_bundle(EXAMPLES / file, tmp_path / "b.planb", plan=plan,
                       options=BuildOptions(targets=FIVE, progress=None))
    bundle = load_bundle(res.path)
    host = detect()
    instance = rt.VmInstance()
    cpu = Device("local-sync")
    params = parameters_of(bundle.manifest, bundle.read)
    for name, mod in bundle.manifest["modules"].items():
        assert sorted(mod["variants"]) == sorted(FIVE)
        for target, v in mod["variants"].items():
            data = bundle.read(v["path"])
            vm = rt.VmModule.copy_buffer(instance, data)  # a valid IREE module, whatever its target
            assert "main" in vm.function_names, (name, target)
            if variant_problem(target, mod["variants"], host) is None and target.startswith("x86"):
                loaded = LoadedModule(name, cpu, data, [t["dtype"] for t in mod["inputs"]],
                                      [t["dtype"] for t in mod["outputs"]], params)
                args = [np.ones(t["shape"], np.float32) for t in mod["inputs"]]
                outs = loaded(*args)
                assert [list(o.shape) for o in outs] == [t["shape"] for t in mod["outputs"]]


def test_building_twice_gives_identical_bytes(tmp_path, monkeypatch):
    monkeypatch.setenv("PLANC_CACHE_DIR", str(tmp_path / "cache"))
    plan = EXAMPLES / "defects" / "defects.plan"
    a = build_bundle(plan, tmp_path / "a.planb", options=BuildOptions(progress=None))
    b = build_bundle(plan, tmp_path / "b.planb", options=BuildOptions(progress=None, cache=False))
    assert (tmp_path / "a.planb").read_bytes() == (tmp_path / "b.planb").read_bytes()
    assert a.sha256 == b.sha256
    # and from another process, from another working directory
    out = tmp_path / "c.planb"
    subprocess.run([sys.executable, "-m", "planc.compiler.cli", "compile", str(plan), "-o", str(out), "--no-cache"],
                   cwd=tmp_path, check=True, capture_output=True)
    assert out.read_bytes() == (tmp_path / "a.planb").read_bytes()


def test_uncompilable_model_is_a_diagnostic_naming_model_and_target(tmp_path):
    (tmp_path / "weird.mlir").write_text(textwrap.dedent("""\
        func.func @main(%a: tensor<4xf32>) -> tensor<4xf32> {
          %0 = stablehlo.custom_call @no_such_kernel(%a) : (tensor<4xf32>) -> tensor<4xf32>
          return %0 : tensor<4xf32>
        }
        """))
    (tmp_path / "bad.plan").write_text(textwrap.dedent("""\
        plan bad {
          target x86_64-avx2
          input x: f32[4]
          model weird = mlir "weird.mlir"
          task y = weird(x)
          output y
        }
        """))
    res = subprocess.run([sys.executable, "-m", "planc.compiler.cli", "compile", "bad.plan", "-o", "bad.planb"],
                         cwd=tmp_path, capture_output=True, text=True, check=False)
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    assert "error[E0501]: IREE cannot compile model 'weird' for target x86_64-avx2" in res.stderr
    assert "bad.plan:4:3" in res.stderr and "custom_call" in res.stderr
    assert not (tmp_path / "bad.planb").exists()
