"""A plan's signature from its manifest: every input's and output's dtype and shape (None: JSON)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["TensorSpec", "signature", "value_types"]


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """One input or output: a tensor of `dtype` and `shape`, or opaque JSON (dtype None: a tool's
    untyped result)."""

    name: str
    dtype: str | None
    shape: tuple[int, ...] | None

    @property
    def is_json(self) -> bool:
        return self.dtype is None

    def describe(self) -> str:
        return "json" if self.dtype is None else f"{self.dtype}{list(self.shape or ())}"


def _walk(tasks: Iterable[Mapping[str, Any]]) -> Iterable[Mapping[str, Any]]:
    for t in tasks:
        yield t
        if t.get("kind") == "loop":
            yield from _walk(t.get("body") or ())


def value_types(manifest: Mapping[str, Any]) -> dict[str, dict[str, Any] | None]:
    """Every value's type {"dtype", "shape"} (None for JSON) from the tasks that produce it."""
    types: dict[str, dict[str, Any] | None] = {
        i["name"]: {"dtype": i["dtype"], "shape": list(i["shape"])} for i in manifest.get("inputs", ())}
    modules = manifest.get("modules") or {}
    gates: list[Mapping[str, Any]] = []
    for t in _walk(manifest.get("tasks") or ()):
        kind, results = t.get("kind"), list(t.get("results") or ())
        if kind == "compute":
            mod = modules.get(t.get("module"), {})
            by_result = dict(zip(mod.get("results") or (), mod.get("outputs") or ()))
            outs = [by_result.get(r) for r in results] if by_result else list(mod.get("outputs") or ())
            types.update(zip(results, outs))
        elif kind == "builtin" and results:
            types[results[0]] = t.get("type")
        elif kind == "tool" and results:
            types[results[0]] = t.get("returns")
        elif kind == "gate" and results:
            gates.append(t)
    for _ in range(len(gates)):  # a gate passes its value's type on (gates may chain)
        for g in gates:
            types[g["results"][0]] = types.get(g["args"][0])
    return types


def signature(manifest: Mapping[str, Any]) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """(inputs, outputs) of a plan."""
    types = value_types(manifest)

    def spec(name: str, t: Mapping[str, Any] | None) -> TensorSpec:
        return TensorSpec(name, None, None) if t is None else TensorSpec(name, t["dtype"], tuple(t["shape"]))

    inputs = tuple(spec(i["name"], i) for i in manifest.get("inputs", ()))
    outputs = tuple(spec(o["name"], types.get(o.get("value", o["name"]))) for o in manifest.get("outputs", ()))
    return inputs, outputs
