"""Finds PP-OCR's ONNX files inside the installed `rapidocr-onnxruntime` wheel (never downloads them)
and links them into models/ beside the plan, with the CTC decode tool holding the recognizer's
character table (read from the rec model's own ONNX metadata).

    python examples/ocr/setup_models.py      # planc demo ocr and the tests call link_models()
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
FILES = {"det.onnx": "ch_PP-OCRv4_det_infer.onnx", "cls.onnx": "ch_ppocr_mobile_v2.0_cls_infer.onnx",
         "rec.onnx": "ch_PP-OCRv4_rec_infer.onnx"}


class ModelsMissing(RuntimeError):
    """rapidocr-onnxruntime is not installed, or lacks a model file."""


def wheel_models() -> Path:
    """The models/ folder of the installed rapidocr_onnxruntime package."""
    spec = importlib.util.find_spec("rapidocr_onnxruntime")
    if spec is None or not spec.submodule_search_locations:
        raise ModelsMissing("the OCR example needs the PP-OCR ONNX files of the rapidocr-onnxruntime "
                            "wheel: pip install 'planc[dev]' (or rapidocr-onnxruntime)")
    folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    missing = [f for f in FILES.values() if not (folder / f).is_file()]
    if missing:
        raise ModelsMissing(f"{folder} lacks {', '.join(missing)}")
    return folder


def character_table(rec: Path) -> list[str]:
    """The recognizer's characters as RapidOCR reads them: the model's 'character' metadata, with
    CTC's blank first and a space last."""
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(rec), load_external_data=False).metadata_props}
    return ["blank", *meta["character"].splitlines(), " "]


def link_models(folder: Path = HERE / "models") -> Path:
    """models/det.onnx, cls.onnx, rec.onnx (symlinks into the wheel) and models/ctc_decode.py."""
    source = wheel_models()
    folder.mkdir(parents=True, exist_ok=True)
    for name, original in FILES.items():
        link = folder / name
        if link.is_symlink() or link.exists():
            if link.resolve() == (source / original).resolve():
                continue
            link.unlink()
        os.symlink(source / original, link)
    template = (HERE / "ctc_decode_template.py").read_text()
    keys = character_table(source / FILES["rec.onnx"])
    text = template.replace("CHARACTERS: list[str] = []", f"CHARACTERS: list[str] = {keys!r}")
    tool = folder / "ctc_decode.py"
    if not tool.is_file() or tool.read_text() != text:
        tool.write_text(text)
    return folder


if __name__ == "__main__":
    print(link_models())
    sys.exit(0)
