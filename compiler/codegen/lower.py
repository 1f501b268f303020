"""Lowering: every group of the merged IR becomes one StableHLO module (entry `main`)."""

from __future__ import annotations

from dataclasses import dataclass

from planc.compiler.codegen.group import Member, builtin_fn, compose
from planc.compiler.codegen.stablehlo import export_stablehlo, normalize
from planc.compiler.ir import (
    BuiltinTask, ComputeTask, GroupTask, LoopTask, ModelKind, PlanGraph, ValueRef, ValueType,
)
from planc.compiler.models import ModelCache, load_jax_model
from planc.dsl.ast import TensorType

__all__ = ["LoweredModule", "value_types", "groups", "lower_group", "lower_all"]


@dataclass(frozen=True, slots=True)
class LoweredModule:
    """One group as StableHLO text; `inputs`/`outputs` are the values it reads and exports."""

    name: str
    mlir: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    input_types: tuple[TensorType, ...]
    output_types: tuple[TensorType, ...]
    members: tuple[str, ...]


def value_types(graph: PlanGraph) -> dict[str, ValueType]:
    """The type of every value in the plan, loop bodies and carries included."""
    out: dict[str, ValueType] = {}
    for t in graph.walk():
        for v, ty in zip(t.values(), t.results):
            out[str(v)] = ty
        if isinstance(t, LoopTask):
            for c in t.carries:
                out[c.name] = c.type
        if isinstance(t, GroupTask):
            for m in t.members:
                for v, ty in zip(m.values(), m.results):
                    out[str(v)] = ty
    return out


def groups(graph: PlanGraph) -> list[GroupTask]:
    """Every group, loop bodies included, in a deterministic (topological) order."""
    return [t for t in graph.walk() if isinstance(t, GroupTask)]


def _member(graph: PlanGraph, m, types: dict[str, ValueType], cache: ModelCache) -> Member:
    args = tuple(str(a) for a in m.args if isinstance(a, ValueRef))
    results = tuple(str(v) for v in m.values())
    if isinstance(m, BuiltinTask):
        return Member(m.name, builtin_fn(m.op.value), args, results)
    assert isinstance(m, ComputeTask)
    decl = graph.info.model(m.model)
    loaded = load_jax_model(decl, [types[a] for a in args], cache=cache, facts=False)
    return Member(m.name, loaded.fn, args, results)


def lower_group(graph: PlanGraph, group: GroupTask, types: dict[str, ValueType],
                cache: ModelCache | None = None) -> LoweredModule:
    """The group's StableHLO: jax members traced as one function, an mlir model passed through."""
    cache = cache or ModelCache()
    inputs = tuple(str(a) for a in group.args if isinstance(a, ValueRef))
    outputs = tuple(str(v) for v in group.exports)
    in_types = tuple(types[a] for a in inputs)
    out_types = tuple(types[o] for o in outputs)
    first = group.members[0]
    if isinstance(first, ComputeTask) and graph.info.model(first.model).kind is ModelKind.MLIR:
        text = normalize(graph.info.model(first.model).path.read_text(encoding="utf-8"), name=group.name)
    else:
        members = [_member(graph, m, types, cache) for m in group.members]
        text = export_stablehlo(compose(members, inputs, outputs), list(in_types), name=group.name)
    return LoweredModule(group.name, text, inputs, outputs, in_types, out_types,  # type: ignore[arg-type]
                         tuple(m.name for m in group.members))


def lower_all(graph: PlanGraph, cache: ModelCache | None = None) -> list[LoweredModule]:
    types = value_types(graph)
    cache = cache or ModelCache()
    return [lower_group(graph, g, types, cache) for g in groups(graph)]
