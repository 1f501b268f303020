"""ONNX models as plan models: typed by preparing them for the task's input types, and the
one door (`load_any_model`) through which infer-types loads a model of any kind."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from planc.compiler.ir.graph import ModelDecl, ModelKind
from planc.compiler.models.load import LoadedModel, ModelCache, load_model
from planc.compiler.models.onnx_prepare import PreparedOnnx, prepare_onnx
from planc.dsl.ast import TensorType

__all__ = ["load_any_model", "load_onnx_model", "onnx_store"]


def onnx_store() -> Any:
    """The on-disk store of prepared ONNX models, beside the compiled-module cache."""
    from planc.compiler.codegen.cache import Cache, default_cache_dir

    return Cache(default_cache_dir() / "onnx")


def load_onnx_model(decl: ModelDecl, arg_types: Sequence[TensorType], *, facts: bool = True,
                    store: Any = "default") -> LoadedModel:
    """Prepares the ONNX file for these argument types; results are the prepared graph's outputs
    (several outputs make a tuple). Raises ModelError (see prepare_onnx)."""
    prepared: PreparedOnnx = prepare_onnx(decl, arg_types, onnx_store() if store == "default" else store)
    outs = prepared.outputs
    return LoadedModel(decl, tuple(arg_types), outs, len(outs) != 1, None, prepared.facts if facts else None)


def load_any_model(decl: ModelDecl, arg_types: Sequence[TensorType], *, cache: ModelCache | None = None,
                   facts: bool = True) -> LoadedModel:
    """A jax, mlir or onnx model bound to these argument types."""
    if decl.kind is ModelKind.ONNX:
        return load_onnx_model(decl, arg_types, facts=facts)
    return load_model(decl, arg_types, cache=cache, facts=facts)
