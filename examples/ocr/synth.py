"""Synthetic printed-text images for the OCR example: Pillow-rendered lines of words and numbers on
light paper, 184 x 368 BGR (as cv2.imread gives), a fixed seed, Pillow's built-in font (the same
pixels on every machine)."""

from __future__ import annotations

import numpy as np

WORDS = ["invoice", "total", "planc", "report", "order", "delta", "model", "bundle", "north", "river",
         "paper", "seven", "green", "light", "store", "price", "garden", "window", "ticket", "number"]
H, W = 184, 368


def _line(rng: np.random.Generator) -> str:
    kind = rng.integers(0, 3)
    if kind == 0:
        return f"{WORDS[rng.integers(len(WORDS))].capitalize()} {rng.integers(10, 999)}"
    if kind == 1:
        return f"{WORDS[rng.integers(len(WORDS))]} {WORDS[rng.integers(len(WORDS))]}"
    return f"No. {rng.integers(1000, 99999)}"


def render(seed: int) -> tuple[np.ndarray, list[str]]:
    """One image (uint8 BGR, H x W x 3) and the lines written on it, top to bottom."""
    from PIL import Image, ImageDraw, ImageFont

    rng = np.random.default_rng(seed)
    paper = tuple(int(v) for v in rng.integers(225, 256, size=3))
    img = Image.new("RGB", (W, H), paper)
    draw = ImageDraw.Draw(img)
    lines = [_line(rng) for _ in range(int(rng.integers(1, 4)))]
    y = int(rng.integers(10, 24))
    for text in lines:
        font = ImageFont.load_default(size=int(rng.integers(24, 31)))
        ink = tuple(int(v) for v in rng.integers(0, 70, size=3))
        draw.text((int(rng.integers(8, 40)), y), text, fill=ink, font=font)
        y += int(rng.integers(50, 58))
    return np.ascontiguousarray(np.asarray(img)[:, :, ::-1]), lines


def images(n: int, seed: int = 2023) -> list[tuple[np.ndarray, list[str]]]:
    return [render(seed + i) for i in range(n)]


def rapidocr_read(image: np.ndarray) -> list[str]:
    """What RapidOCR's own pipeline (ONNX Runtime) reads, line by line: the reference."""
    from rapidocr_onnxruntime import RapidOCR

    global _ENGINE
    if _ENGINE is None:
        _ENGINE = RapidOCR()
    result, _ = _ENGINE(image)
    return [r[1] for r in result] if result else []


_ENGINE = None
