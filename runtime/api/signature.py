"""A plan's signature from its manifest records: every input's and output's dtype and shape (None: JSON)."""

from __future__ import annotations

from dataclasses import dataclass

from planc.runtime.contract.manifest import Manifest, TensorType

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


def value_types(manifest: Manifest) -> dict[str, TensorType | None]:
    """Every value's type (None for JSON) from the tasks that produce it."""
    return manifest.value_types()


def signature(manifest: Manifest) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """(inputs, outputs) of a plan, from its manifest records (`Bundle.records`)."""
    types = manifest.value_types()

    def spec(name: str, t: TensorType | None) -> TensorSpec:
        return TensorSpec(name, None, None) if t is None else TensorSpec(name, t.dtype.value, t.shape)

    inputs = tuple(spec(n, t) for n, t in manifest.inputs.items())
    outputs = tuple(spec(o.name, types.get(o.value)) for o in manifest.outputs)
    return inputs, outputs
