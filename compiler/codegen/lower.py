"""Lowering: every group of the merged IR becomes one StableHLO module (entry `main`)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from planc.compiler.cache import Cache, onnx_store
from planc.compiler.codegen.group import Member, builtin_fn, compose
from planc.compiler.hlo.stablehlo import export_stablehlo, normalize
from planc.compiler.ir.graph import (
    BuiltinTask,
    ComputeTask,
    GroupTask,
    LoopTask,
    ModelKind,
    PlanGraph,
    ValueRef,
    ValueType,
)
from planc.compiler.models.load import ModelCache, load_jax_model
from planc.compiler.models.onnx_file import file_digest
from planc.compiler.models.onnx_prepare import prepare_onnx
from planc.dsl.ast import TensorType

__all__ = ["LoweredModule", "groups", "lower_all", "lower_group", "lowering_key", "member", "value_types"]


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


def member(graph: PlanGraph, m, types: dict[str, ValueType], cache: ModelCache | None = None,
           mlir_reference: Mapping[str, Callable[..., Any]] | None = None) -> Member:
    """A group member as a JAX function of its argument values. An mlir model has none, unless
    `mlir_reference` names a JAX function standing in for it (reference runs)."""
    args = tuple(str(a) for a in m.args if isinstance(a, ValueRef))
    results = tuple(str(v) for v in m.values())
    if isinstance(m, BuiltinTask):
        return Member(m.name, builtin_fn(m.op.value, m.results[0].dtype.value), args, results)
    assert isinstance(m, ComputeTask)
    decl = graph.info.model(m.model)
    if decl.kind is not ModelKind.JAX:
        if m.model not in (mlir_reference or {}):
            raise KeyError(f"no JAX function for {decl.kind.value} model '{m.model}'")
        return Member(m.name, mlir_reference[m.model], args, results)  # type: ignore[index]
    loaded = load_jax_model(decl, [types[a] for a in args], cache=cache, facts=False)
    return Member(m.name, loaded.fn, args, results)


def lower_group(graph: PlanGraph, group: GroupTask, types: dict[str, ValueType],
                cache: ModelCache | None = None) -> LoweredModule:
    """The group's module: jax members traced as one function, an mlir model passed through, an onnx
    model prepared and imported (torch-dialect MLIR, which iree-compile takes as it takes StableHLO)."""
    cache = cache or ModelCache()
    inputs = [str(a) for a in group.args if isinstance(a, ValueRef)]
    first = group.members[0]
    kind = graph.info.model(first.model).kind if isinstance(first, ComputeTask) else ModelKind.JAX
    if kind is ModelKind.MLIR:
        text = normalize(graph.info.model(first.model).path.read_text(encoding="utf-8"), name=group.name)
    elif kind is ModelKind.ONNX:  # a group of one (merge never mixes torch-dialect and StableHLO)
        args = [str(a) for a in first.args if isinstance(a, ValueRef)]
        prepared = prepare_onnx(graph.info.model(first.model), [types[a] for a in args], onnx_store())
        text = normalize(prepared.mlir, name=group.name)
    else:
        members = [member(graph, m, types, cache) for m in group.members]
        fn = compose(members, inputs, [str(v) for v in group.exports])
        text = export_stablehlo(fn, [types[a] for a in inputs], name=group.name)  # type: ignore[misc]
    return _module(group, text, types)


def lowering_key(graph: PlanGraph, group: GroupTask, types: dict[str, ValueType]) -> str:
    """Content key of a group's StableHLO: the wiring and types of its members, the bytes of
    every model file, weights file and sibling .py file they load, and the jax version.
    Any change to what tracing could see changes the key."""
    import jax

    h = hashlib.sha256(f"planc-lowering-v1 jax={jax.__version__} name={group.name}".encode())
    files: set[Path] = set()
    for m in group.members:
        args = [str(a) for a in m.args if isinstance(a, ValueRef)]
        h.update(repr((m.kind, getattr(m, "model", None), getattr(getattr(m, "op", None), "value", None),
                       args, [str(v) for v in m.values()], [str(types[a]) for a in args])).encode())
        if isinstance(m, ComputeTask):
            decl = graph.info.model(m.model)
            h.update(f"{decl.kind.value}:{decl.function}".encode())
            files.add(decl.path)
            if decl.kind is ModelKind.ONNX:
                h.update(file_digest(decl.path).encode())  # the external data beside it too
            else:
                files.update(decl.path.parent.glob("*.py"))
            if decl.weights is not None:
                files.add(decl.weights)
    h.update(repr(([str(a) for a in group.args], [str(v) for v in group.exports])).encode())
    for f in sorted(files):
        h.update(f.name.encode())
        h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()  # the "planc-lowering-v1" prefix keeps these apart from module keys


def lower_all(graph: PlanGraph, cache: ModelCache | None = None, *, store: Cache | None = None) -> list[LoweredModule]:
    """Every group's module; with `store`, StableHLO comes from the content-addressed cache
    when nothing it depends on changed (a warm rebuild then skips JAX tracing)."""
    types = value_types(graph)
    cache = cache or ModelCache()
    out = []
    for g in groups(graph):
        key = lowering_key(graph, g, types) if store is not None else ""
        hit = store.get(key) if store is not None else None
        if hit is not None:
            out.append(_module(g, hit.decode(), types))
            continue
        mod = lower_group(graph, g, types, cache)
        if store is not None:
            store.put(key, mod.mlir.encode())
        out.append(mod)
    return out


def _module(group: GroupTask, text: str, types: dict[str, ValueType]) -> LoweredModule:
    inputs = tuple(str(a) for a in group.args if isinstance(a, ValueRef))
    outputs = tuple(str(v) for v in group.exports)
    return LoweredModule(group.name, text, inputs, outputs, tuple(types[a] for a in inputs),  # type: ignore[misc]
                         tuple(types[o] for o in outputs), tuple(m.name for m in group.members))
