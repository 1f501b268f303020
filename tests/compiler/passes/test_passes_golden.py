"""Golden IR after each pass (build, verify, infer-types) for every example plan.

Update with `PLANC_UPDATE_GOLDEN=1 pytest tests/compiler/passes/test_passes_golden.py` and review
the diff of tests/golden/ir/.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from planc.compiler.pipeline import PipelineOptions, parse_pipeline, run_pipeline
from planc.dsl.parser import parse_file

ROOT = Path(__file__).resolve().parents[3]
GOLDEN = ROOT / "tests" / "golden" / "ir"
PASSES = ("build", "verify", "infer-types")
UPDATE = os.environ.get("PLANC_UPDATE_GOLDEN") == "1"
EXAMPLES = sorted((ROOT / "examples").glob("*/*.plan"))
CASES = [(f, p.name.name) for f in EXAMPLES for p in parse_file(f).plans]


@pytest.fixture(scope="module")
def dumps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Runs the pipeline once per plan with --dump-dir; the dumps are the text under test."""
    out = tmp_path_factory.mktemp("dumps")
    for file, plan_name in CASES:
        (plan,) = [p for p in parse_file(file).plans if p.name.name == plan_name]
        options = PipelineOptions(verify_each=True, dump_dir=out / file.parent.name)
        run_pipeline(plan, parse_pipeline(",".join(PASSES)), options)
    return out


def test_every_example_plan_is_covered() -> None:
    names = {plan for _, plan in CASES}
    assert {"defects", "triage", "sensors", "vib_screen"} <= names


@pytest.mark.parametrize("index,pass_name", list(enumerate(PASSES)))
@pytest.mark.parametrize("file,plan", CASES, ids=[f"{f.parent.name}-{p}" for f, p in CASES])
def test_ir_after_pass_matches_golden(dumps: Path, file: Path, plan: str, index: int, pass_name: str) -> None:
    text = (dumps / file.parent.name / plan / f"{index:02d}-{pass_name}.ir").read_text()
    assert str(ROOT) not in text and "/tmp" not in text and "/home" not in text, "goldens hold no machine paths"
    golden = GOLDEN / f"{file.parent.name}.{plan}.{pass_name}.ir"
    if UPDATE:
        golden.write_text(text)
    assert golden.exists(), f"missing {golden.relative_to(ROOT)}: run with PLANC_UPDATE_GOLDEN=1"
    assert text == golden.read_text(), f"IR after {pass_name} differs from {golden.relative_to(ROOT)}"


def test_types_appear_only_after_infer_types(dumps: Path) -> None:
    before = (dumps / "defects" / "defects" / "01-verify.ir").read_text()
    after = (dumps / "defects" / "defects" / "02-infer-types.ir").read_text()
    assert "-> f32[1,16]" not in before and "%boxes = compute @detector(%pre) : (f32[1,64,64,3]) -> f32[1,16]" in after
    assert "flops=" in after and "flops=" not in before
