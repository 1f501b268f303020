"""The one vocabulary: every spelling of a dtype, builtin or target comes from one table and maps back."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from planc.runtime.contract.builtins import BUILTIN_NAMES, Builtin
from planc.runtime.contract.dtypes import (
    DTYPE_NAMES,
    DType,
    dtype_of_mlir,
    dtype_of_numpy,
    dtype_of_oip,
    dtype_of_onnx,
    numpy_dtype,
)
from planc.runtime.contract.kinds import TASK_KIND_NAMES
from planc.runtime.contract.targets import KNOWN_TARGETS, X86_LEVELS, Target


@pytest.mark.parametrize("d", list(DType), ids=lambda d: d.value)
def test_each_spelling_maps_back(d: DType) -> None:
    info = d.info
    assert dtype_of_numpy(info.numpy) is d and dtype_of_mlir(info.mlir) is d
    assert dtype_of_oip(info.oip) is d and dtype_of_onnx(info.onnx) is d
    assert numpy_dtype(d.value).itemsize == d.itemsize


def test_names_and_order() -> None:
    assert DTYPE_NAMES == ("f32", "f16", "bf16", "i8", "i32", "i64", "bool")
    assert BUILTIN_NAMES == ("max", "min", "mean", "sum", "argmax")
    assert TASK_KIND_NAMES == ("compute", "builtin", "tool", "gate", "loop")
    assert dtype_of_numpy("float64") is None and dtype_of_mlir("f64") is None and dtype_of_onnx(11) is None


@pytest.mark.parametrize(("op", "dtype", "result"), [
    (Builtin.ARGMAX, DType.F16, DType.I32), (Builtin.MEAN, DType.I8, DType.F32), (Builtin.MEAN, DType.BF16, DType.BF16),
    (Builtin.SUM, DType.BOOL, DType.I32), (Builtin.SUM, DType.I64, DType.I64), (Builtin.MAX, DType.BOOL, DType.BOOL),
])
def test_builtin_result_dtype_is_what_numpy_computes(op: Builtin, dtype: DType, result: DType) -> None:
    assert op.result_dtype(dtype) is result
    if dtype is not DType.BF16:  # the runtime computes wide and converts to the compiler's type
        fn = {"max": np.max, "min": np.min, "mean": np.mean, "sum": np.sum, "argmax": np.argmax}[op.value]
        got = np.asarray(fn(np.zeros(4, numpy_dtype(dtype.value))))
        assert np.can_cast(got.dtype, numpy_dtype(result.value), casting="same_kind") or op is Builtin.ARGMAX


def test_targets_say_what_a_host_needs() -> None:
    assert set(KNOWN_TARGETS) == {t.value for t in Target}
    assert tuple(KNOWN_TARGETS)[::6] == ("cuda-sm90", "vmvx")  # best first
    assert KNOWN_TARGETS["x86_64-avx2"] == (40, frozenset({"x86_64", *X86_LEVELS["x86-64-v3"]}))
    assert Target.CUDA_SM80.requires == {"cuda", "sm_80"} and Target.VMVX.requires == frozenset()


def test_the_engine_does_not_import_ray_or_the_compiler() -> None:
    code = ("import sys, planc.runtime.engine.runner, planc.runtime.api; "
            "print(sorted(m for m in sys.modules if m.startswith(('planc.runtime.ray', 'planc.compiler', 'jax'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
