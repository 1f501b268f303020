"""Guard expressions: a table of evaluations, short-circuit, and clear errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from planc.runtime.engine.expr import (
    ExprError,
    compile_guard,
    evaluate,
    evaluate_bool,
    refs,
    scalar,
    validate,
)


def ref(n: str) -> dict:
    return {"ref": n}


def num(x: float) -> dict:
    return {"num": x}


def op(o: str, *args: dict) -> dict:
    return {"op": o, "args": list(args)}


VALUES = {
    "worst": np.array(0.7, dtype=np.float32),
    "quality": 0.96,
    "urgency": np.float32(3.0),
    "count": np.array(4, dtype=np.int32),
    "flag": np.array(False),
    "nan": float("nan"),
}


@pytest.mark.parametrize(
    "expr,expected",
    [
        (op(">", ref("worst"), num(0.5)), True),
        (op("<", ref("worst"), num(0.5)), False),
        (op("<=", ref("count"), num(4)), True),
        (op(">=", ref("count"), num(5)), False),
        (op("==", ref("count"), num(4)), True),
        (op("!=", ref("count"), num(4)), False),
        (op("==", ref("urgency"), num(3)), True),
        (op("and", op(">", ref("worst"), num(0.5)), op("<", ref("worst"), num(0.85))), True),
        (op("and", op(">", ref("worst"), num(0.5)), op("<", ref("worst"), num(0.6))), False),
        (op("or", op("<", ref("quality"), num(0.95)), op(">=", ref("urgency"), num(2))), True),
        (op("or", op("<", ref("quality"), num(0.95)), op(">=", ref("urgency"), num(4))), False),
        (op("not", op(">", ref("quality"), num(0.99))), True),
        (op("and", op(">", ref("urgency"), num(2)), op("not", op(">", ref("quality"), num(0.99)))), True),
        (op("not", ref("flag")), True),
        (op(">", ref("nan"), num(0)), False),
        (op("!=", ref("nan"), ref("nan")), True),
        (op(">", num(-1), ref("count")), False),
        (op("and", num(1), num(2), num(0)), False),
        (op("or", num(0), num(0), num(3)), True),
    ],
)
def test_evaluation_table(expr: dict, expected: bool) -> None:
    assert evaluate(expr, VALUES) is expected
    assert evaluate_bool(expr, VALUES) is expected
    assert compile_guard(expr)(VALUES) is expected  # the executor's compiled form agrees


def test_bare_refs_and_numbers_yield_numbers() -> None:
    assert evaluate(ref("count"), VALUES) == 4 and isinstance(evaluate(ref("count"), VALUES), int)
    assert evaluate(ref("worst"), VALUES) == pytest.approx(0.7)
    assert evaluate(num(2.5), {}) == 2.5
    assert evaluate_bool(ref("count"), VALUES) is True and evaluate_bool(num(0), {}) is False


def test_short_circuit_never_touches_the_other_side() -> None:
    missing = op(">", ref("skipped_value"), num(0))
    assert evaluate(op("and", op("<", ref("worst"), num(0)), missing), VALUES) is False
    assert evaluate(op("or", op(">", ref("worst"), num(0)), missing), VALUES) is True
    with pytest.raises(ExprError, match="'skipped_value', which is not available"):
        evaluate(op("or", op("<", ref("worst"), num(0)), missing), VALUES)
    assert compile_guard(op("and", op("<", ref("worst"), num(0)), missing))(VALUES) is False
    assert compile_guard(op("or", op(">", ref("worst"), num(0)), missing))(VALUES) is True
    with pytest.raises(ExprError, match="'skipped_value', which is not available"):
        compile_guard(op("or", op("<", ref("worst"), num(0)), missing))(VALUES)


def test_compiled_guard_reads_through_fetch() -> None:
    """The executor's fetch hands over host values and hides skipped ones (KeyError)."""
    seen = []

    def fetch(values, name):
        seen.append(name)
        if values[name] is None:
            raise KeyError(name)
        return values[name] * 2

    guard = compile_guard(op(">", ref("x"), num(3)), fetch=fetch)
    assert guard({"x": 2}) is True and guard({"x": 1}) is False and seen == ["x", "x"]
    with pytest.raises(ExprError, match=r"'x', which is not available \(known: x\)"):
        guard({"x": None})


@pytest.mark.parametrize(
    "values,msg",
    [
        ({}, r"refers to value 'x', which is not available \(known: none\)"),
        ({"x": np.zeros((2, 3))}, r"value 'x' is not a scalar: it has shape \[2, 3\]"),
        ({"x": np.zeros((1,))}, r"value 'x' is not a scalar: it has shape \[1\]"),
        ({"x": "text"}, "value 'x' is a str, expected a numeric scalar"),
        ({"x": {"sent": True}}, "value 'x' is a dict"),
        ({"x": np.array("s")}, "value 'x' has dtype <U1"),
    ],
)
def test_bad_values_are_named(values: dict, msg: str) -> None:
    with pytest.raises(ExprError, match=msg):
        evaluate(op(">", ref("x"), num(0)), values)
    with pytest.raises(ExprError, match=msg):
        compile_guard(op(">", ref("x"), num(0)))(values)


@pytest.mark.parametrize(
    "expr,msg",
    [
        ({"op": "xor", "args": []}, "unknown expression node"),
        ({"op": ">", "args": [num(1)]}, "'>' takes exactly 2 argument"),
        ({"op": "not", "args": [num(1), num(2)]}, "'not' takes exactly 1"),
        ({"op": "and", "args": []}, "'and' takes at least 1"),
        ({"op": ">", "args": "ab"}, "needs a list 'args'"),
        ({"ref": 3}, "bad reference node"),
        ({"num": "1"}, "bad number node"),
        ({"num": True}, "bad number node"),
        ([1, 2], "expected an expression node"),
        (op("and", num(1), {"op": "?", "args": []}), "unknown expression node"),
    ],
)
def test_malformed_trees_are_errors_even_where_short_circuited(expr, msg: str) -> None:
    with pytest.raises(ExprError, match=msg):
        validate(expr)
    with pytest.raises(ExprError, match=msg):
        evaluate(expr, VALUES)
    with pytest.raises(ExprError, match=msg):
        compile_guard(expr)  # when the bundle is loaded, not when a run first reaches the guard


def test_refs_and_scalar() -> None:
    e = op("or", op("<", ref("quality"), num(0.95)), op("not", op(">=", ref("urgency"), ref("worst"))))
    assert refs(e) == {"quality", "urgency", "worst"}
    assert refs(num(1)) == frozenset()
    assert scalar("a", np.bool_(True)) is True
    assert scalar("a", np.array(2, np.int64)) == 2
    assert math.isnan(scalar("a", np.float32("nan")))
