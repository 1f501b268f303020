"""The one input rule of `planrt run`, `plan.run` and `planrt serve`: a value converts to the declared
dtype only where every element keeps its value."""

from __future__ import annotations

import numpy as np
import pytest
from planc.runtime.contract.manifest import TensorType
from planc.runtime.engine.inputs import InputError, check_inputs

DECLARED = {n: TensorType.from_json({"dtype": d, "shape": s}) for n, d, s in
            (("x", "f32", [2]), ("n", "i32", []), ("ok", "bool", []))}


def run(x=(0.5, 1.5), n=3, ok=True):
    return check_inputs(DECLARED, {"x": x, "n": n, "ok": ok})


def test_values_that_keep_their_value_convert():
    out = run(x=np.array([0.1, -2.0]), n=np.int64(7))
    assert out["x"].dtype == np.float32 and out["n"].dtype == np.int32 and out["ok"].dtype == np.bool_
    assert run(x=[1, 2])["x"].tolist() == [1.0, 2.0]  # integers exact in f32
    assert np.isnan(run(x=[float("nan"), float("inf")])["x"][0])  # NaN and inf stay what they are


@pytest.mark.parametrize(("given", "message"), [
    ({"x": np.array([1e300, 0.0])}, "1e+300 overflows f32"),
    ({"x": [True, False]}, "boolean values are not converted to floating-point"),
    ({"x": np.array([2**30 + 1, 0])}, "1073741825 is not exact in f32"),
    ({"n": 2.5}, "floating-point values are not converted to integer"),
    ({"n": 2**40}, "1099511627776 does not fit i32"),
    ({"ok": 1}, "integer values are not converted to boolean"),
    ({"x": ["a", "b"]}, "has dtype <U1"),
])
def test_values_that_would_change_are_refused_naming_the_input(given, message):
    with pytest.raises(InputError, match="input '(x|n|ok)'") as e:
        run(**given)
    assert message in str(e.value)
