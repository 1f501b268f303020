"""The candidate check and pick of runtime/engine/measure.py (pure: no IREE module runs)."""

from __future__ import annotations

import numpy as np
from planc.runtime.engine.measure import MAX_RTOL, RTOL, Measured, _rel_err, fastest, sample_inputs


def test_sample_inputs_are_seeded_and_typed():
    a = sample_inputs(["f32", "i64", "bool"], [[2, 3], [4], [5]])
    b = sample_inputs(["f32", "i64", "bool"], [[2, 3], [4], [5]])
    assert [x.dtype.name for x in a] == ["float32", "int64", "bool"]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_a_few_boundary_elements_pass_and_an_error_everywhere_does_not():
    ref = np.linspace(0, 1, 1000, dtype=np.float32)
    edge = ref.copy()
    edge[:3] += 0.014  # PP-OCR det: IREE and ORT differ like this at a few elements
    mean, worst = _rel_err([edge], [ref])
    assert mean <= RTOL and worst <= MAX_RTOL
    mean, _ = _rel_err([ref + 0.01], [ref])  # a build that is off everywhere
    assert mean > RTOL
    assert _rel_err([ref[:10]], [ref]) == (float("inf"), float("inf"))


def test_the_reference_wins_unless_beaten_by_the_margin():
    m = {"plain/local-sync": Measured("plain/local-sync", 1.00), "nhwc/local-sync": Measured("nhwc/local-sync", 0.99),
         "bad": Measured("bad", None, "mismatch")}
    assert fastest(m, reference="plain/local-sync") == "plain/local-sync"
    m["nhwc/local-sync"] = Measured("nhwc/local-sync", 0.5)
    assert fastest(m, reference="plain/local-sync") == "nhwc/local-sync"
