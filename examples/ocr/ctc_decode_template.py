"""CTC decode of PP-OCR's recognizer output: the plan's last tool (a python tool of the OCR example).

setup_models.py writes models/ctc_decode.py from this template with CHARACTERS filled in from the
rec model's own metadata, so the tool is one self-contained file in the bundle.
"""

from __future__ import annotations

CHARACTERS: list[str] = []
TEXT_SCORE = 0.5  # RapidOCR drops lines read with a lower mean confidence


def decode(ids, probs, boxes):
    """Collapse repeats, drop blanks, map to characters; one {"text", "score", "box"} per detected
    line whose mean confidence reaches TEXT_SCORE (RapidOCR's filter)."""
    out = []
    for row, (line_ids, line_probs) in enumerate(zip(ids, probs)):
        if row >= len(boxes):
            break
        chars, confs, prev = [], [], None
        for i, p in zip(line_ids, line_probs):
            if i != prev and i != 0:
                chars.append(CHARACTERS[i])
                confs.append(p)
            prev = i
        score = sum(confs) / len(confs) if confs else 0.0
        if score >= TEXT_SCORE:
            out.append({"text": "".join(chars), "score": round(score, 5), "box": boxes[row]})
    return out
