"""examples/ocr end to end: PP-OCRv4's ONNX files from the installed rapidocr-onnxruntime wheel, compiled
for this host and checked against ONNX Runtime at compile time, read synthetic images exactly as
RapidOCR's own pipeline does. About 2-3 min on 2 cores with a cold IREE cache (three real models)."""

from __future__ import annotations

import importlib.util
import os
import sys

import pytest
from e2e_support import EXAMPLES

pytestmark = [pytest.mark.iree, pytest.mark.slow]

IMAGES = int(os.environ.get("PLANC_OCR_IMAGES", "3"))  # examples/ocr/compare.py runs 20


@pytest.fixture(scope="module")
def ocr(tmp_path_factory):
    pytest.importorskip("rapidocr_onnxruntime")
    os.environ.setdefault("PLANC_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    spec = importlib.util.spec_from_file_location("_ocr_compare", EXAMPLES / "ocr" / "compare.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod, mod.build(tmp_path_factory.mktemp("ocr") / "ocr.planb")


def test_reads_the_same_strings_as_rapidocr(ocr):
    cmp, bundle = ocr
    rows = cmp.compare(bundle, IMAGES)
    assert all(r.rapidocr for r in rows)  # the reference reads something on every image
    assert [r.planc for r in rows] == [r.rapidocr for r in rows], cmp.report(rows)


def test_models_come_from_the_installed_wheel_and_are_groups_of_one(ocr):
    cmp, bundle = ocr
    from planc.runtime.bundle.loader import load_bundle

    source = cmp.setup_models.wheel_models()
    for name in ("det", "cls", "rec"):
        assert (EXAMPLES / "ocr" / "models" / f"{name}.onnx").resolve().parent == source.resolve()
    modules = load_bundle(bundle).manifest["modules"]
    onnx_modules = [m for m in modules.values() if m["members"][0] in ("prob", "turn", "chars")]
    assert sorted(m["members"][0] for m in onnx_modules) == ["chars", "prob", "turn"]
    assert all(len(m["members"]) == 1 for m in onnx_modules)
