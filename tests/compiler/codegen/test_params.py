"""Weights as named parameters: which constants leave the StableHLO, their keys, the archive, its alignment."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np
import pytest
from planc.compiler.bundle.writer import write_bundle, write_bundle_dir
from planc.compiler.codegen.params import externalize, write_archive
from planc.runtime.bundle.format import ALIGN
from planc.runtime.bundle.loader import load_bundle

pytestmark = pytest.mark.iree


def _module(name: str, weights: np.ndarray, small: np.ndarray) -> str:
    w = weights.astype("<f4").tobytes().hex().upper()
    s = ", ".join(f"{x:e}" for x in small)
    n, m = weights.shape
    return f"""module @{name} {{
  func.func @main(%x: tensor<1x{n}xf32>) -> tensor<1x{m}xf32> {{
    %w = stablehlo.constant dense<"0x{w}"> : tensor<{n}x{m}xf32>
    %b = stablehlo.constant dense<[{s}]> : tensor<{m}xf32>
    %z = stablehlo.constant dense<1.0> : tensor<{m}x{m}xf32>
    %0 = stablehlo.dot_general %x, %w, contracting_dims = [1] x [0] : (tensor<1x{n}xf32>, tensor<{n}x{m}xf32>) -> tensor<1x{m}xf32>
    %1 = stablehlo.dot_general %0, %z, contracting_dims = [1] x [0] : (tensor<1x{m}xf32>, tensor<{m}x{m}xf32>) -> tensor<1x{m}xf32>
    %2 = stablehlo.broadcast_in_dim %b, dims = [1] : (tensor<{m}xf32>) -> tensor<1x{m}xf32>
    %3 = stablehlo.add %1, %2 : tensor<1x{m}xf32>
    return %3 : tensor<1x{m}xf32>
  }}
}}
"""


W = np.random.RandomState(0).standard_normal((64, 8)).astype(np.float32)  # 2 KiB
B = np.arange(8, dtype=np.float32)  # 32 bytes: stays inline


def test_large_constants_become_parameters_keyed_by_content():
    e = externalize(_module("a", W, B))
    key = hashlib.sha256(W.tobytes()).hexdigest()
    assert dict(e.params) == {key: W.tobytes()}
    assert f'#stream.parameter.named<"planc"::"{key}">' in e.mlir
    assert "util.global.load immutable" in e.mlir
    assert W.tobytes().hex().upper()[:64] not in e.mlir  # the weights left the text
    assert "dense<1.000000e+00>" in e.mlir and "dense<[0.000000e+00" in e.mlir  # splat, small: inline


def test_the_same_weights_get_the_same_key_in_every_module():
    a, b = externalize(_module("a", W, B)), externalize(_module("b", W, B + 1))
    assert set(a.params) == set(b.params)
    c = externalize(_module("c", W * 2, B))
    assert not set(a.params) & set(c.params)


def test_threshold_keeps_everything_inline_when_high():
    e = externalize(_module("a", W, B), min_bytes=W.nbytes + 1)
    assert not e.params and "stream.parameter" not in e.mlir


def test_archive_is_deterministic_and_readable():
    import iree.runtime as rt

    params = {hashlib.sha256(x).hexdigest(): x for x in (W.tobytes(), B.tobytes() * 40)}
    data = write_archive(params)
    assert data == write_archive(dict(reversed(list(params.items()))))
    index = rt.ParameterIndex()
    index.load_from_file_handle(rt.FileHandle.wrap_memory(data), "irpa")
    assert sorted(k for k, _ in index.items()) == sorted(params)


@pytest.mark.parametrize("prefix", ["a", "bb", "tools/x/longer-name.sh", "c" * 37])
def test_archive_member_data_is_aligned_in_the_zip(tmp_path: Path, prefix: str):
    archive = write_archive({"k": bytes(range(256)) * 8})
    members = {"params/weights.irpa": archive, f"mlir/{prefix}": b"x" * len(prefix)}
    manifest = {"schema": 1, "plan": "p", "modules": {}, "tools": {},
                "parameters": {"path": "params/weights.irpa", "scope": "planc"}}
    write_bundle(tmp_path / "b.planb", manifest, members)
    raw = (tmp_path / "b.planb").read_bytes()
    with zipfile.ZipFile(tmp_path / "b.planb") as z:
        assert z.read("params/weights.irpa") == archive  # zip readers skip the padding
    start = raw.index(archive)
    assert start % ALIGN == 0
    for bundle in (load_bundle(tmp_path / "b.planb"),
                   load_bundle(Path(write_bundle_dir(tmp_path / "d", manifest, members) and tmp_path / "d"))):
        view = bundle.read("params/weights.irpa")
        assert isinstance(view, memoryview) and bytes(view) == archive  # mapped, not copied


def test_archive_member_is_still_hash_checked(tmp_path: Path):
    from planc.runtime.bundle.loader import HashMismatch

    archive = write_archive({"k": bytes(range(256)) * 8})
    manifest = {"schema": 1, "plan": "p", "modules": {}, "tools": {},
                "parameters": {"path": "params/weights.irpa", "scope": "planc"}}
    write_bundle(tmp_path / "b.planb", manifest, {"params/weights.irpa": archive})
    raw = bytearray((tmp_path / "b.planb").read_bytes())
    raw[raw.index(archive) + len(archive) - 5] ^= 0xFF
    (tmp_path / "b.planb").write_bytes(bytes(raw))
    with pytest.raises(HashMismatch):
        load_bundle(tmp_path / "b.planb")


def test_onnx_initializers_from_ionnx_import_become_parameters():
    hexw = W.tobytes().hex().upper()
    text = f"""module {{
  func.func @main(%x: !torch.vtensor<[1,64],f32>) -> !torch.vtensor<[1,8],f32> {{
    %w = torch.operator "onnx.Constant"() {{torch.onnx.value = dense<"0x{hexw}"> : tensor<64x8xf32>}} : () -> !torch.vtensor<[64,8],f32>
    %0 = torch.operator "onnx.MatMul"(%x, %w) : (!torch.vtensor<[1,64],f32>, !torch.vtensor<[64,8],f32>) -> !torch.vtensor<[1,8],f32>
    return %0 : !torch.vtensor<[1,8],f32>
  }}
}}
"""
    e = externalize(text)
    assert list(e.params) == [hashlib.sha256(W.tobytes()).hexdigest()]
    assert "torch_c.from_builtin_tensor" in e.mlir and "onnx.Constant" not in e.mlir
    assert externalize(e.mlir).params == {}  # parses again, nothing left to move


def test_onnx_initializers_held_as_dense_resources_become_parameters():
    blob = "0x04000000" + W.tobytes().hex().upper()  # a resource blob: its alignment, then the bytes
    text = f"""module {{
  func.func @main(%x: !torch.vtensor<[1,64],f32>) -> !torch.vtensor<[1,8],f32> {{
    %w = torch.operator "onnx.Constant"() {{torch.onnx.value = dense_resource<_fc.weight> : tensor<64x8xf32>}} : () -> !torch.vtensor<[64,8],f32>
    %0 = torch.operator "onnx.MatMul"(%x, %w) : (!torch.vtensor<[1,64],f32>, !torch.vtensor<[64,8],f32>) -> !torch.vtensor<[1,8],f32>
    return %0 : !torch.vtensor<[1,8],f32>
  }}
}}

{{-#
  dialect_resources: {{
    builtin: {{
      _fc.weight: "{blob}"
    }}
  }}
#-}}
"""
    e = externalize(text)
    assert dict(e.params) == {hashlib.sha256(W.tobytes()).hexdigest(): W.tobytes()}
    assert "_fc.weight" not in e.mlir  # the blob left with its last use
