"""Compose a merged group's members into one JAX function (traced and exported as one module)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from planc.runtime.contract.builtins import Builtin
from planc.runtime.contract.dtypes import DType

__all__ = ["Member", "builtin_fn", "compose"]


@dataclass(frozen=True, slots=True)
class Member:
    """One task inside a group: `fn(*args)` gives one array or a tuple, bound to `results` in order."""

    name: str
    fn: Callable[..., Any]
    args: tuple[str, ...]
    results: tuple[str, ...]


def builtin_fn(op: str, result_dtype: str) -> Callable[[Any], Any]:
    """The JAX form of a builtin reduction: a rank-0 result of the type infer-types gave it
    (argmax over the flattened tensor, i32; mean of integers f32; sum of bool i32)."""
    import jax.numpy as jnp

    out = jnp.dtype(DType.parse(result_dtype).numpy)
    if Builtin(op) is Builtin.ARGMAX:
        return lambda x: jnp.argmax(jnp.ravel(x)).astype(out)
    red: Any = {Builtin.MAX: jnp.max, Builtin.MIN: jnp.min, Builtin.MEAN: jnp.mean, Builtin.SUM: jnp.sum}[Builtin(op)]
    return lambda x: red(x).astype(out)


def compose(members: Sequence[Member], inputs: Sequence[str], outputs: Sequence[str]) -> Callable[..., tuple]:
    """A function of the group's inputs (in order) returning its exported values (in order).

    Intermediates that no output names never leave the function, so IREE fuses
    across the old task boundaries."""
    members = tuple(members)
    inputs, outputs = tuple(inputs), tuple(outputs)

    def group(*arrays: Any) -> tuple:
        env: dict[str, Any] = dict(zip(inputs, arrays))
        for m in members:
            out = m.fn(*(env[a] for a in m.args))
            if len(m.results) == 1 and not isinstance(out, (tuple, list)):
                env[m.results[0]] = out
            else:
                for r, o in zip(m.results, out):
                    env[r] = o
        return tuple(env[o] for o in outputs)

    return group
