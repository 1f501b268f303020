"""Evaluate the manifest's guard expressions (EXPR trees) over task values, without eval."""

from __future__ import annotations

import numbers
import operator
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

__all__ = ["ExprError", "compile_guard", "evaluate", "evaluate_bool", "refs", "scalar", "validate"]

_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
_LOGIC = ("and", "or", "not")
_EXPECTED = (
    "{'ref': NAME}, {'num': NUMBER} or {'op': one of "
    + ", ".join(repr(o) for o in (*_COMPARE, *_LOGIC))
    + ", 'args': [...]}"
)


class ExprError(ValueError):
    """A malformed expression, or a value it refers to that is missing or not a scalar."""


def scalar(name: str, value: Any) -> bool | int | float:
    """`value` as a Python number; an error naming `name` if it is not a scalar.

    Scalars are Python bools/ints/floats, numpy scalars and 0-d numpy arrays of a
    boolean, integer or floating dtype.
    """
    if type(value) is np.ndarray and value.ndim == 0 and value.dtype.kind in "biuf":
        return value.item()  # type: ignore[no-any-return]  # the common case: a 0-d task result
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Real) and not isinstance(value, np.ndarray):
        return value.item() if isinstance(value, np.generic) else value  # type: ignore[return-value]
    if isinstance(value, np.ndarray):
        if value.ndim != 0:
            raise ExprError(
                f"value '{name}' is not a scalar: it has shape {list(value.shape)}; "
                "a guard compares scalars (rank-0 values such as f32[] or a reduction like max(x))"
            )
        if value.dtype.kind not in "biuf":
            raise ExprError(f"value '{name}' has dtype {value.dtype}, expected a boolean or numeric scalar")
        return value.item()  # type: ignore[no-any-return]
    raise ExprError(f"value '{name}' is a {type(value).__name__}, expected a numeric scalar")


def validate(expr: Any) -> None:
    """Check the shape of an EXPR tree; raise ExprError describing the first bad node."""
    _check(expr, "expression")


def refs(expr: Any) -> frozenset[str]:
    """The value names an expression refers to (its data dependencies)."""
    _check(expr, "expression")
    out: set[str] = set()
    stack = [expr]
    while stack:
        node = stack.pop()
        if "ref" in node:
            out.add(node["ref"])
        else:
            stack.extend(node.get("args", ()))
    return frozenset(out)


def evaluate(expr: Any, values: Mapping[str, Any]) -> bool | int | float:
    """Evaluate `expr` over `values`; `and`/`or` short-circuit (the right side may be missing).

    Comparisons and logic yield bools; a bare `ref` or `num` yields its number. The
    whole tree is checked first, so a malformed node is an error even where skipped.
    """
    _check(expr, "expression")
    return _eval(expr, values)


def evaluate_bool(expr: Any, values: Mapping[str, Any]) -> bool:
    """`evaluate` as a guard: a number is true when it is non-zero."""
    return bool(evaluate(expr, values))


def compile_guard(expr: Any, *, fetch: Callable[[Any, str], Any] | None = None) -> Callable[[Any], bool]:
    """Check `expr` once and return a guard function over values (the executor's hot path).

    The tree becomes nested closures, so a run walks no dicts. `fetch(values, name)` reads
    one value (KeyError when it is not available); by default `values[name]`."""
    _check(expr, "expression")
    f = _compile(expr, fetch or _item)
    return lambda values: bool(f(values))


def _item(values: Any, name: str) -> Any:
    return values[name]


def _compile(expr: Mapping[str, Any], fetch: Callable[[Any, str], Any]) -> Callable[[Any], Any]:
    if "ref" in expr:
        name = _name(expr)

        def ref(values: Any) -> Any:
            try:
                v = fetch(values, name)
            except KeyError:
                known = ", ".join(sorted(values)) or "none"
                raise ExprError(f"expression refers to value '{name}', which is not available (known: {known})"
                                ) from None
            return scalar(name, v)
        return ref
    if "num" in expr:
        n = _num(expr)
        return lambda values: n
    op, args = _op(expr)
    parts = [_compile(a, fetch) for a in args]
    if op in _COMPARE:
        cmp, (left, right) = _COMPARE[op], parts
        return lambda values: bool(cmp(left(values), right(values)))
    if op == "not":
        (inner,) = parts
        return lambda values: not inner(values)
    if len(parts) == 2:  # the common case, without a generator (still short-circuits)
        a, b = parts
        if op == "and":
            return lambda values: bool(a(values)) and bool(b(values))
        return lambda values: bool(a(values)) or bool(b(values))
    if op == "and":
        return lambda values: all(bool(p(values)) for p in parts)  # short-circuits, left to right
    return lambda values: any(bool(p(values)) for p in parts)


def _eval(expr: Mapping[str, Any], values: Mapping[str, Any]) -> bool | int | float:
    if "ref" in expr:
        name = _name(expr)
        if name not in values:
            known = ", ".join(sorted(values)) or "none"
            raise ExprError(f"expression refers to value '{name}', which is not available (known: {known})")
        return scalar(name, values[name])
    if "num" in expr:
        return _num(expr)
    op, args = _op(expr)
    if op in _COMPARE:
        left, right = (_eval(a, values) for a in args)
        return bool(_COMPARE[op](left, right))
    if op == "not":
        return not _eval(args[0], values)
    for arg in args:  # and / or, left to right, short-circuit
        t = bool(_eval(arg, values))
        if t == (op == "or"):
            return t
    return op == "and"


def _check(expr: Any, where: str) -> None:
    if not isinstance(expr, Mapping):
        raise ExprError(f"{where}: expected an expression node {_EXPECTED}, found {expr!r}")
    if "ref" in expr:
        _name(expr)
    elif "num" in expr:
        _num(expr)
    else:
        op, args = _op(expr)
        for i, a in enumerate(args):
            _check(a, f"argument {i} of '{op}'")


def _name(expr: Mapping[str, Any]) -> str:
    name = expr["ref"]
    if not isinstance(name, str) or not name or set(expr) != {"ref"}:
        raise ExprError(f"bad reference node {dict(expr)!r}: expected {{'ref': NAME}}")
    return name


def _num(expr: Mapping[str, Any]) -> int | float:
    n = expr["num"]
    if isinstance(n, bool) or not isinstance(n, (int, float)) or set(expr) != {"num"}:
        raise ExprError(f"bad number node {dict(expr)!r}: expected {{'num': NUMBER}}")
    return n


def _op(expr: Mapping[str, Any]) -> tuple[str, list[Any]]:
    op, args = expr.get("op"), expr.get("args")
    if op not in _COMPARE and op not in _LOGIC:
        raise ExprError(f"unknown expression node {dict(expr)!r}: expected {_EXPECTED}")
    if not isinstance(args, list) or set(expr) != {"op", "args"}:
        raise ExprError(f"operator '{op}' needs a list 'args' and nothing else, found {dict(expr)!r}")
    want = 2 if op in _COMPARE else 1 if op == "not" else None
    if (want is not None and len(args) != want) or (want is None and len(args) < 1):
        n = "exactly " + str(want) if want is not None else "at least 1"
        raise ExprError(f"operator '{op}' takes {n} argument(s), found {len(args)}")
    return op, args
