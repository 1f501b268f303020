"""The OCR example's JAX glue between the ONNX models: resize and normalize for the detector, pick the
classifier's and recognizer's inputs from the crops, and the recognizer's best class per step."""

import jax
import jax.numpy as jnp

DET_H, DET_W = 736, 1472  # RapidOCR's detector input for a 184 x 368 image (shorter side to 736)
CLS_W, REC_W = 192, 320
CLS_THRESH = 0.9
PROB_SCALE = 10000


def det_input(image):
    """BGR 0..255 HxWx3 -> 1x3xDET_HxDET_W, resized (bilinear) and scaled to [-1, 1] like RapidOCR."""
    big = jax.image.resize(image, (DET_H, DET_W, 3), method="linear", antialias=False)
    big = jnp.clip(jnp.round(big), 0.0, 255.0)  # cv2.resize of a uint8 image gives integers
    return jnp.transpose((big / 255.0 - 0.5) / 0.5, (2, 0, 1))[None]


def det_map(prob):
    """The detector's probability map in units of 1e-4, as integers: the box tool's argument travels as
    JSON, and a million small integers cost a fifth of the time of a million floats."""
    return jnp.round(prob[0, 0] * PROB_SCALE).astype(jnp.int32)


def _scaled(lines):
    """Twice the pixel values (ocr_tools.crop_lines) to [-1, 1], as RapidOCR scales pixels."""
    return lines.astype(jnp.float32) / 255.0 - 1.0


def cls_input(lines):
    """The classifier's 48 x 192 part of each crop row."""
    return _scaled(lines[..., :CLS_W])


def rec_input(lines, cls_probs):
    """The recognizer's 48 x 320 input per line: the crop turned 180 degrees where the classifier is
    sure it is upside down (label '180' above CLS_THRESH), as RapidOCR does."""
    turn = (jnp.argmax(cls_probs, axis=1) == 1) & (jnp.max(cls_probs, axis=1) > CLS_THRESH)
    upright, turned = _scaled(lines[..., CLS_W:CLS_W + REC_W]), _scaled(lines[..., CLS_W + REC_W:])
    return jnp.where(turn[:, None, None, None], turned, upright)


def best(rec_probs):
    """Per step the most likely class and its probability (CTC greedy decoding's input)."""
    return jnp.argmax(rec_probs, axis=2).astype(jnp.int32), jnp.max(rec_probs, axis=2)
