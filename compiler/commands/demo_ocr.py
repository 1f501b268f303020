"""`planc demo ocr`: compile examples/ocr (PP-OCRv4 from the installed rapidocr-onnxruntime wheel)
for this host, read synthetic images with it, and compare with RapidOCR's own pipeline."""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path
from typing import Any

from planc.dsl.diagnostics import DiagnosticError, render_all

__all__ = ["run_ocr"]


def _compare_module(folder: Path) -> Any:
    spec = importlib.util.spec_from_file_location("_planc_ocr_compare", folder / "compare.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up while it loads
    spec.loader.exec_module(mod)
    return mod


def run_ocr(args: argparse.Namespace, examples: Path) -> int:
    folder = examples / "ocr"
    try:
        cmp = _compare_module(folder)
        cmp.setup_models.link_models()
    except (ImportError, RuntimeError) as e:  # no rapidocr-onnxruntime, opencv or pyclipper
        print(f"planc demo ocr: {e}")
        return 1
    out = args.output
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    plan = folder / "ocr.plan"
    try:
        bundle = cmp.build(out / "ocr.planb")
    except DiagnosticError as e:
        print(render_all(e.diagnostics, {str(plan): plan.read_text(), plan.name: plan.read_text()}), file=sys.stderr)
        return 1
    print(f"== compiled {plan} for {cmp.host_target()} -> {bundle} in {time.perf_counter() - t0:.1f}s"
          " (the PP-OCR models checked against ONNX Runtime)")
    rows = cmp.compare(bundle, args.images)
    print(f"\n== read {len(rows)} synthetic images with planrt and with RapidOCR (ONNX Runtime)")
    print(cmp.report(rows))
    return 0 if all(r.same for r in rows) else 1
