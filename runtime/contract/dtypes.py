"""The dtypes a plan computes in: one table, read by the DSL, the compiler, the bundle checks and the runtime."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from planc.enums import TextEnum

__all__ = ["DTYPE_NAMES", "DType", "DTypeInfo", "dtype_of_mlir", "dtype_of_numpy", "dtype_of_oip", "dtype_of_onnx",
           "numpy_dtype"]


class DTypeInfo(NamedTuple):
    """How one dtype is spelled elsewhere: numpy (bf16 through ml_dtypes), its size, KServe's
    Open Inference Protocol, MLIR's element type, IREE's HalElementType member, ONNX's
    TensorProto element type."""

    numpy: str
    itemsize: int
    oip: str
    mlir: str
    hal: str
    onnx: int


# The one dtype table. Its order is the order everything else lists dtypes in (a merged
# group's `mix`, the schema's error messages).
_TABLE: Mapping[str, DTypeInfo] = MappingProxyType({
    "f32": DTypeInfo("float32", 4, "FP32", "f32", "FLOAT_32", 1),
    "f16": DTypeInfo("float16", 2, "FP16", "f16", "FLOAT_16", 10),
    "bf16": DTypeInfo("bfloat16", 2, "BF16", "bf16", "BFLOAT_16", 16),
    "i8": DTypeInfo("int8", 1, "INT8", "i8", "SINT_8", 3),
    "i32": DTypeInfo("int32", 4, "INT32", "i32", "SINT_32", 6),
    "i64": DTypeInfo("int64", 8, "INT64", "i64", "SINT_64", 7),
    "bool": DTypeInfo("bool", 1, "BOOL", "i1", "BOOL_8", 9),
})


class DType(TextEnum, noun="dtype"):
    """A tensor element type; the value is its name in .plan files and manifests."""

    F32 = "f32"
    F16 = "f16"
    BF16 = "bf16"
    I8 = "i8"
    I32 = "i32"
    I64 = "i64"
    BOOL = "bool"

    @property
    def info(self) -> DTypeInfo:
        return _TABLE[self.value]

    @property
    def itemsize(self) -> int:
        return _TABLE[self.value].itemsize

    @property
    def numpy(self) -> str:
        return _TABLE[self.value].numpy

    @property
    def is_float(self) -> bool:
        return self in (DType.F32, DType.F16, DType.BF16)


DTYPE_NAMES: tuple[str, ...] = tuple(_TABLE)
assert DTYPE_NAMES == tuple(d.value for d in DType), "the dtype table and DType list the same names"

_BY_NUMPY = {info.numpy: DType(name) for name, info in _TABLE.items()}
_BY_MLIR = {info.mlir: DType(name) for name, info in _TABLE.items()}
_BY_OIP = {info.oip: DType(name) for name, info in _TABLE.items()}
_BY_ONNX = {info.onnx: DType(name) for name, info in _TABLE.items()}


def dtype_of_numpy(name: str) -> DType | None:
    """The planc dtype of a numpy dtype name ("float32" -> f32); None for one planc has not."""
    return _BY_NUMPY.get(name)


def dtype_of_mlir(element: str) -> DType | None:
    """The planc dtype of an MLIR element type ("i1" -> bool); None for one planc has not."""
    return _BY_MLIR.get(element)


@functools.cache
def numpy_dtype(name: str) -> Any:
    """The numpy dtype of a planc dtype name ("f32" -> float32). bf16 comes from ml_dtypes (which
    iree-base-runtime and jax ship): ImportError without it. KeyError for an unknown name."""
    import numpy as np  # lazy: the DSL reads this table without numpy

    np_name = _TABLE[name].numpy
    if np_name == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(np_name)


def dtype_of_onnx(elem: int) -> DType | None:
    """The planc dtype of an ONNX TensorProto element type (1 -> f32); None for one planc has not."""
    return _BY_ONNX.get(elem)


def dtype_of_oip(datatype: str) -> DType | None:
    """The planc dtype of an Open Inference Protocol datatype ("FP32" -> f32)."""
    return _BY_OIP.get(datatype)
