"""scripts/soak.py in its small form: the reliability campaigns of docs/reliability.md, seeded and short."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import soak


def _soak(tmp_path: Path, only: str, *extra: str) -> tuple[int, dict]:
    out = tmp_path / "soak.json"
    rc = soak.main(["--small", "--only", only, "--work", str(tmp_path / "work"), "--json", str(out), *extra])
    return rc, json.loads(out.read_text())


def test_front_end_and_bundles(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, res = _soak(tmp_path, "frontend,bundles")
    table = capsys.readouterr().out
    assert rc == 0, table
    f, b = res["frontend"], res["bundles"]
    assert f["inputs"] == 300 and f["tracebacks"] == f["hangs"] == f["broken"] == 0
    assert {"syntax", "error", "clean"} <= set(f["outcomes"])  # every stage was reached
    assert f["round_trips"] > 30 and f["cli_files"] > 0 and f["cli_mismatches"] == 0
    assert b["bundles"] + b["unchanged"] == 130 and not b["failures"]
    assert b["pinned_rejected"] == b["bundles"] and b["rejected_total"] > b["bundles"] // 2
    assert len(b["by_tamper"]) == 13 and b["cli_runs"] == 3
    assert "front end: mutated plans" in table and "bundles: tampered" in table


def test_bundles_with_trust_refuses_every_content_change(tmp_path: Path) -> None:
    """soak.py --trust (about 5 s): signed goods, only their key trusted; every tampered bundle whose
    content changed is refused, re-hashed edits and attacks on the signature included."""
    rc, res = _soak(tmp_path, "bundles", "--trust")
    b = res["bundles"]
    assert rc == 0 and b["trusted"] and not b["failures"], b["failures"][:3]
    assert len(b["by_tamper"]) == 17 and b["consistent_total"] > 10
    assert sum(b["consistent_refused"].values()) == b["consistent_total"]
    assert b["rejected_total"] + sum(b["same_content"].values()) == b["bundles"]
    assert not b["accepted_consistent"] and {"B0015", "B0016", "B0017", "B0018"} <= set(b["rejected"])


@pytest.mark.slow
def test_crashes_and_faults(tmp_path: Path) -> None:
    rc, res = _soak(tmp_path, "crashes,faults")
    c, fl = res["crashes"], res["faults"]
    assert rc == 0, res
    assert c["trials"] == c["resumed"] == c["identical"] == c["exactly_once"] == 2
    if fl["cases"] == 0:
        pytest.skip(f"fault stage could not run here: {fl['notes']}")
    assert fl["resumed"] == fl["cases"] - 1  # all but the read-only root, which never starts a run
    assert fl["clear_errors"] >= fl["cases"] // 2


def test_bad_stage_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    assert soak.main(["--only", "frontend,bombs"]) == 2
    assert "unknown stage(s) bombs" in capsys.readouterr().err
