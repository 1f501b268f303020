"""Reference execution: the same plan computed with JAX (no IREE), for end-to-end checks."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from planc.compiler.codegen.group import compose
from planc.compiler.codegen.lower import groups, member, value_types
from planc.compiler.ir.graph import PlanGraph, ValueRef
from planc.runtime.contract.manifest import Task

__all__ = ["jax_compute"]


def jax_compute(graph: PlanGraph, mlir_reference: Mapping[str, Callable[..., Any]] | None = None
                ) -> Callable[[Task, list[Any]], list[Any]]:
    """An engine compute service that runs each group's members with jax.jit on the host.

    `mlir_reference` maps an mlir model's name to a JAX function standing in for it (a
    StableHLO file cannot run in JAX); without one, a plan with mlir models cannot be
    referenced."""
    import jax
    from planc.runtime.engine.values import Value

    types = value_types(graph)
    fns: dict[str, tuple[Callable[..., Any], list[str]]] = {}
    for g in groups(graph):
        members = [member(graph, m, types, mlir_reference=mlir_reference) for m in g.members]
        inputs = [str(a) for a in g.args if isinstance(a, ValueRef)]
        outputs = [str(v) for v in g.exports]
        dtypes = [types[o].dtype.value for o in outputs]  # type: ignore[union-attr]
        fns[g.name] = (jax.jit(compose(members, inputs, outputs)), dtypes)

    def compute(task: Task, args: list[Any]) -> list[Any]:
        fn, dtypes = fns[str(task.module)]
        outs = fn(*[a.to_host() for a in args])
        return [Value.from_host(np.asarray(o), d) for o, d in zip(outs, dtypes)]

    return compute
