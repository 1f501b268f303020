"""Device buffers to numpy and back on a local driver: every dtype, VmRefs, copies that never alias."""

from __future__ import annotations

import iree.runtime as rt
import numpy as np
import pytest
from planc.runtime.engine.modules import DTYPES, Device, numpy_dtype


@pytest.fixture(scope="module")
def device() -> Device:
    return Device("local-sync")


def _sample(dtype: str) -> np.ndarray:
    if dtype == "bool":
        return np.array([[True, False, True], [False, False, True]])
    return (np.arange(6).reshape(2, 3) - 2).astype(numpy_dtype(dtype))


@pytest.mark.parametrize("dtype", sorted(DTYPES))
def test_round_trip_every_dtype(device, dtype):
    if dtype == "bf16":
        pytest.importorskip("ml_dtypes")
    a = _sample(dtype)
    view = device.to_device(a, dtype)
    back = device.to_host(view, dtype)
    assert back.dtype == numpy_dtype(dtype) and back.shape == a.shape
    np.testing.assert_array_equal(back.astype(np.float32), a.astype(np.float32))
    back[...] = back[0, 0]  # a private, writable copy: the device buffer is untouched
    np.testing.assert_array_equal(device.to_host(view, dtype).astype(np.float32), a.astype(np.float32))


def test_scalars_and_strided_inputs(device):
    s = device.to_host(device.to_device(np.float32(2.5), "f32"), "f32")
    assert s.shape == () and s == 2.5
    strided = np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::2]
    np.testing.assert_array_equal(device.to_host(device.to_device(strided, "f32"), "f32"), strided)
    wide = np.array([1, 2, 3], np.int64)
    assert device.to_host(device.to_device(wide, "i32"), "i32").dtype == np.int32


def test_vmref_from_a_result_list_reads_like_its_view(device):
    a = _sample("f32")
    view = device.to_device(a, "f32")
    lst = rt.VmVariantList(1)
    lst.push_ref(view)
    np.testing.assert_array_equal(device.to_host(lst.get_as_ref(0), "f32"), a)
