"""`planc demo`, the README's main job: compile and run the shipped example, saying what ran where."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path


def test_demo_runs_and_says_which_deployment_and_which_variants(tmp_path: Path) -> None:
    planc = Path(sys.executable).with_name("planc")
    out = subprocess.run([str(planc), "demo", "-o", str(tmp_path / "demo")], capture_output=True, text=True, check=False,
                         timeout=900, cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    assert "== schedule predicted for deployment 'edge-x86-gpu'" in text and "it is not this host" in text
    modules = re.findall(r"^   module (g\d+) \([^)]*\): scheduled on (\S+) \((\S+)\); this host runs (\S+)",
                         text, re.MULTILINE)
    assert {m[0] for m in modules} == {"g0", "g1"}, text
    for _, _, kind, variant in modules:
        assert variant.startswith(("x86_64-", "aarch64-", "cuda-"))
        if kind != variant:  # e.g. scheduled on a GPU of the deployment, run on this host's CPU
            assert f"this host runs {variant} instead ({kind}:" in text or "ranked above" in text
    assert "completed" in text and "same plan computed with JAX: max abs difference" in text
