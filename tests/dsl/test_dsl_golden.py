"""Golden files: the exact text `planc check` prints for a few broken plans.

Regenerate after an intended change with PLANC_UPDATE_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from planc.compiler import cli

GOLDEN = Path(__file__).with_name("golden")
CASES = sorted(GOLDEN.glob("*.plan"))
UPDATE = os.environ.get("PLANC_UPDATE_GOLDEN") == "1"


def test_there_are_golden_cases() -> None:
    assert len(CASES) >= 5


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_rendered_diagnostics(case: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(GOLDEN)  # the rendered paths are relative, so the files are portable
    rc = cli.main(["check", case.name])
    captured = capsys.readouterr()
    got = f"exit: {rc}\n{captured.err}"
    expected_file = case.with_suffix(".txt")
    if UPDATE:
        expected_file.write_text(got, encoding="utf-8")
    assert expected_file.exists(), f"no golden file {expected_file.name}; run with PLANC_UPDATE_GOLDEN=1"
    assert got == expected_file.read_text(encoding="utf-8")
    assert captured.out == ""
