"""Suite-wide settings: deterministic property tests, and the emulation tier's table at the end of the run."""

from __future__ import annotations

import os
from typing import Any

from hypothesis import settings

# Property tests draw the same examples on every run (set HYPOTHESIS_PROFILE=explore to search
# afresh): CI must not fail on a draw that the previous run never saw.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    rows, setup, seconds = [], None, 0.0
    for report in terminalreporter.stats.get("passed", []):
        props = dict(report.user_properties)
        if "emulation" in props:
            rows.append(props["emulation"])
        setup = props.get("emulation-setup", setup)
        if "emulation" in report.keywords:
            seconds += report.duration
    if not rows and setup is None:
        return
    write = terminalreporter.write_line
    terminalreporter.section("emulated targets (tests/emulation)")
    if setup is not None:
        how = "cached" if setup["cached"] else f"built in {setup['built_s']:.1f}s"
        write(f"set-up: {how}; first call {setup['first_call_s']:.2f}s, cached call {setup['cached_call_s']:.3f}s")
    write(f"{'target':<34} {'plan':<11} {'match':<6} {'variants':<14} {'planrt wall':>11} {'run (median)':>13}")
    for r in sorted(rows, key=lambda r: (r["target"], r["plan"])):
        run = "-" if r["run_ms"] is None else f"{r['run_ms']:.1f} ms"
        write(f"{r['target']:<34} {r['plan']:<11} {'yes':<6} {','.join(r['variants']):<14} "
              f"{r['wall_s']:>10.1f}s {run:>13}")
    write(f"emulation tier: {len(rows)} example runs matched JAX; test time {seconds:.1f}s (call phases)")


def pytest_sessionstart(session: Any) -> None:
    """examples/ocr names its ONNX models as models/*.onnx: link them from the installed
    rapidocr-onnxruntime wheel (a dev dependency) before any test globs the example plans."""
    import importlib.util
    from pathlib import Path

    setup = Path(__file__).resolve().parent.parent / "examples" / "ocr" / "setup_models.py"
    if importlib.util.find_spec("rapidocr_onnxruntime") is None or not setup.is_file():
        return
    spec = importlib.util.spec_from_file_location("_planc_ocr_setup", setup)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.link_models()
