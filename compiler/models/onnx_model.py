"""ONNX models as plan models: typed by preparing them for the task's input types, and the
one door (`load_any_model`) through which infer-types loads a model of any kind."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from planc.compiler.ir.graph import ModelDecl, ModelKind
from planc.compiler.models.load import LoadedModel, ModelCache, load_model
from planc.compiler.models.onnx_prepare import PreparedOnnx, prepare_onnx
from planc.dsl.ast import TensorType

__all__ = ["load_any_model", "load_onnx_model"]


def load_onnx_model(decl: ModelDecl, arg_types: Sequence[TensorType], *, facts: bool = True,
                    store: Any = None) -> LoadedModel:
    """Prepares the ONNX file for these argument types (kept in `store`, a codegen Cache, when
    given); results are the prepared graph's outputs (several make a tuple). Raises ModelError."""
    prepared: PreparedOnnx = prepare_onnx(decl, arg_types, store)
    outs = prepared.outputs
    return LoadedModel(decl, tuple(arg_types), outs, len(outs) != 1, None, prepared.facts if facts else None)


def load_any_model(decl: ModelDecl, arg_types: Sequence[TensorType], *, cache: ModelCache | None = None,
                   facts: bool = True, onnx_store: Any = None) -> LoadedModel:
    """A jax, mlir or onnx model bound to these argument types."""
    if decl.kind is ModelKind.ONNX:
        return load_onnx_model(decl, arg_types, facts=facts, store=onnx_store)
    return load_model(decl, arg_types, cache=cache, facts=facts)
