"""A merged group whose members have different inputs: a skipped input skips only what needs it."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
from planc.compiler.bundle.build import BuildOptions, build_bundle
from planc.runtime.bundle.loader import load_bundle
from planc.runtime.engine.runner import RunConfig, Runner
from planc.runtime.journal.rundir import RunDir

pytestmark = pytest.mark.iree

PLAN = """\
plan guarded {
  target x86_64-avx2, x86_64-avx512
  input x: f32[3]
  input flag: f32[]
  model double = jax "m.py:double"
  task g = double(x) when flag > 0
  task h = double(g)
  task other = double(x) after g
  task m = max(h)
  output g, h, m, other
}
"""


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    d = tmp_path_factory.mktemp("partial")
    (d / "m.py").write_text("def double(x):\n    return x * 2\n")
    (d / "p.plan").write_text(textwrap.dedent(PLAN))
    res = build_bundle(d / "p.plan", d / "p.planb", options=BuildOptions(progress=None))
    merged = [t for t in res.manifest["tasks"] if t["kind"] == "compute" and len(t["results"]) > 1]
    assert merged, "the test needs h and other merged into one group"
    return load_bundle(res.path)


@pytest.mark.parametrize("flag,expect_g", [(1.0, True), (-1.0, False)])
def test_skipped_input_skips_only_its_dependents(bundle, tmp_path, flag, expect_g):
    x = np.array([1, 2, 3], np.float32)
    runner = Runner(bundle, RunConfig(run_root=tmp_path))
    try:
        result, run_dir = runner.run({"x": x, "flag": np.float32(flag)})
        run_dir.close()
        np.testing.assert_array_equal(result.outputs["other"], 2 * x)
        if expect_g:
            np.testing.assert_array_equal(result.outputs["h"], 4 * x)
            assert result.outputs["m"] == 12.0
        else:
            assert result.outputs["g"] is None and result.outputs["h"] is None and result.outputs["m"] is None
        # A resume replays the group's record: the same values, the same skips.
        with RunDir.open(run_dir.path) as again:
            replayed = runner.resume(again)
        for name, value in result.outputs.items():
            if value is None:
                assert replayed.outputs[name] is None, name
            else:
                np.testing.assert_array_equal(replayed.outputs[name], value)
    finally:
        runner.close()
