"""Builtins give the types infer-types promised, merged into a module or run on the host."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
from planc.compiler.bundle.build import BuildOptions, build_bundle
from planc.runtime.bundle.loader import load_bundle
from planc.runtime.engine.runner import RunConfig, Runner

pytestmark = pytest.mark.iree

PLAN = """\
plan reductions {
  target x86_64-avx2, x86_64-avx512
  input k: i32[2, 3]
  input f: bool[4]
  model ident = jax "m.py:ident"
  task a = ident(k)
  task mean_in_group = mean(a)
  task mean_on_host = mean(k)
  task sum_bool = sum(f)
  task top = argmax(a)
  task low = min(k)
  output mean_in_group, mean_on_host, sum_bool, top, low
}
"""


def test_builtin_types_and_values(tmp_path):
    (tmp_path / "m.py").write_text("def ident(x):\n    return x + 0\n")
    (tmp_path / "p.plan").write_text(textwrap.dedent(PLAN))
    res = build_bundle(tmp_path / "p.plan", tmp_path / "p.planb", options=BuildOptions(progress=None))
    k = np.array([[1, 2, 4], [7, 0, 3]], np.int32)
    f = np.array([True, False, True, True])
    runner = Runner(load_bundle(res.path), RunConfig())
    try:
        out, _ = runner.run({"k": k, "f": f})
    finally:
        runner.close()
    expected = {"mean_in_group": (np.float32(17 / 6), np.float32), "mean_on_host": (np.float32(17 / 6), np.float32),
                "sum_bool": (3, np.int32), "top": (3, np.int32), "low": (0, np.int32)}
    for name, (value, dtype) in expected.items():
        got = out.outputs[name]
        assert got.shape == () and got.dtype == dtype, (name, got.dtype)
        np.testing.assert_allclose(got, value, rtol=1e-6, err_msg=name)
