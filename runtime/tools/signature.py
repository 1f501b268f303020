"""What a python tool's function accepts: read from its source without running it, or from the live function.

One rule serves the compiler (a diagnostic at the call), the bundle loader (an error before any
run) and the tool worker (what to pass on each call): a function gets the call's arguments
positionally, and the idempotency key as the keyword `idempotency_key` only if it asks for it,
by a parameter of that name or by `**kwargs`.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["KEY_PARAMETER", "ToolSignature"]

KEY_PARAMETER = "idempotency_key"
_P = inspect.Parameter
_KEYWORD_KINDS = (_P.POSITIONAL_OR_KEYWORD, _P.KEYWORD_ONLY)


@dataclass(frozen=True, slots=True)
class ToolSignature:
    """A tool function's name and parameters, and whether it takes the idempotency key."""

    function: str
    signature: inspect.Signature

    @classmethod
    def from_function(cls, fn: Callable[..., Any], name: str | None = None) -> ToolSignature | None:
        """The live function's signature; None where Python cannot tell (some builtins)."""
        try:
            sig = inspect.signature(fn)
        except (TypeError, ValueError):
            return None
        return cls(name or getattr(fn, "__name__", "tool"), sig)

    @classmethod
    def from_source(cls, source: str | bytes, function: str) -> ToolSignature | None:
        """The signature of the module-level `def function` in `source`, read without running it.

        None where the source alone cannot tell: a syntax error, no such `def`, a decorated
        function, or a name bound again after its `def` (the worker then checks the live function).
        """
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError):
            return None
        found: ast.FunctionDef | ast.AsyncFunctionDef | None = None
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == function:
                found = node
            elif found is not None and function in _bound_names(node):
                return None
        if found is None or found.decorator_list:
            return None
        return cls(function, _signature(found.args))

    @property
    def wants_key(self) -> bool:
        """Whether the function asks for the idempotency key (a parameter of that name, or **kwargs)."""
        params = self.signature.parameters.values()
        return any(p.kind is _P.VAR_KEYWORD for p in params) or any(
            p.name == KEY_PARAMETER and p.kind in _KEYWORD_KINDS for p in params)

    def call_kwargs(self, key: str) -> dict[str, str]:
        """The keyword arguments a call passes beside its positional ones."""
        return {KEY_PARAMETER: key} if self.wants_key else {}

    def mismatch(self, args: Sequence[Any]) -> str | None:
        """Why a call with these positional arguments cannot bind (None: it can)."""
        try:
            self.signature.bind(*args, **self.call_kwargs("key"))
        except TypeError as e:
            return str(e)
        return None

    def __str__(self) -> str:
        return f"{self.function}{self.signature}"


def may_define(source: str | bytes, name: str) -> bool:
    """Whether the module `source` may bind `name` at its top level (read, never run). False only
    where it surely does not: it parses, has no `import *` and no module `__getattr__`."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return True  # the worker reports the syntax error with its own trace
    bound: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
            return True
        bound |= _bound_names(node)
    return name in bound or "__getattr__" in bound


def _bound_names(node: ast.stmt) -> set[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).split(".")[0] for a in node.names}
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}


def _signature(a: ast.arguments) -> inspect.Signature:
    """An inspect.Signature of the parameters as written; defaults are shown as `...`."""
    positional = [*a.posonlyargs, *a.args]
    first_default = len(positional) - len(a.defaults)
    params = [_P(x.arg, _P.POSITIONAL_ONLY if i < len(a.posonlyargs) else _P.POSITIONAL_OR_KEYWORD,
                 default=... if i >= first_default else _P.empty) for i, x in enumerate(positional)]
    if a.vararg is not None:
        params.append(_P(a.vararg.arg, _P.VAR_POSITIONAL))
    params += [_P(x.arg, _P.KEYWORD_ONLY, default=_P.empty if d is None else ...)
               for x, d in zip(a.kwonlyargs, a.kw_defaults)]
    if a.kwarg is not None:
        params.append(_P(a.kwarg.arg, _P.VAR_KEYWORD))
    return inspect.Signature(params)
