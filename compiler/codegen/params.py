"""Weights out of StableHLO: large constants become named parameters, stored once in an .irpa archive.

A constant's parameter key is the sha256 of its bytes, so the same weights get the same key in
every module, target, variant and merged group, and one archive in the bundle serves them all
(IREE's `#stream.parameter.named<"scope"::"key">`, the pattern iree-turbine uses).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["MIN_PARAM_BYTES", "SCOPE", "Externalized", "externalize", "write_archive"]

SCOPE = "planc"
# Constants smaller than this stay inline in the module (see docs/bundle.md, "Weights"): a
# parameter costs a named load at context creation and keeps IREE from folding the constant into
# its consumer, which pays only for weights, not for a scale vector or a bias.
MIN_PARAM_BYTES = 1024


@dataclass(frozen=True, slots=True)
class Externalized:
    """A module's text with its large constants replaced by parameter loads, and those parameters."""

    mlir: str
    params: Mapping[str, bytes]  # key (sha256 hex of the bytes) -> raw little-endian bytes


# Ops that hold a constant, and the attribute that holds it: StableHLO and arith, and the ONNX
# initializers of IREE's ONNX import (`torch.operator "onnx.Constant"` with `torch.onnx.value`).


def _value_attr(op: Any) -> str | None:
    name = op.operation.name
    if name in ("stablehlo.constant", "arith.constant"):
        return "value"
    if name == "torch.operator" and "torch.onnx.value" in op.attributes and len(op.operands) == 0:
        return "torch.onnx.value"
    return None


def _constants(op: Any, out: list[tuple[Any, str]]) -> None:
    for region in op.regions:
        for block in region.blocks:
            for inner in block.operations:
                attr = _value_attr(inner)
                if attr is not None:
                    out.append((inner, attr))
                _constants(inner.operation, out)


_RESOURCE = re.compile(r'^\s*"?([^":\s]+)"?\s*:\s*"0x([0-9A-Fa-f]*)"', re.MULTILINE)
_RESOURCE_REF = re.compile(r'dense_resource<"?([^">]+)"?>')
_WIDTH = {"f32": 4, "f64": 8, "f16": 2, "i8": 1, "i16": 2, "i32": 4, "i64": 8, "ui8": 1, "si8": 1}


def _resources(text: str) -> dict[str, str]:
    """The hex of every `builtin` dialect resource blob (where IREE's ONNX import puts initializers)."""
    start = text.rfind("{-#")
    return {m.group(1): m.group(2) for m in _RESOURCE.finditer(text, start)} if start >= 0 else {}


def _resource_bytes(attr: Any, blobs: dict[str, str]) -> bytes | None:
    from iree.compiler import ir

    m = _RESOURCE_REF.match(str(attr))
    if m is None or m.group(1) not in blobs:
        return None
    if str(ir.ShapedType(attr.type).element_type) not in _WIDTH:
        return None
    shaped = ir.ShapedType(attr.type)
    width = _WIDTH[str(shaped.element_type)]
    count = 1
    for d in shaped.shape:
        count *= d
    data = bytes.fromhex(blobs[m.group(1)])[4:]  # a blob starts with its alignment, 4 bytes
    if len(data) != width * count or data == data[:width] * count:
        return None  # malformed, or a splat written out: stays inline
    return data


def _raw_bytes(attr: Any, blobs: dict[str, str]) -> bytes | None:
    """The constant's bytes as IREE lays them out, or None where it stays inline (splats,
    element types numpy cannot hold exactly: i1, bf16 and the like)."""
    import numpy as np
    from iree.compiler import ir

    if not isinstance(attr, ir.DenseElementsAttr):
        try:
            attr = ir.DenseElementsAttr(attr)
        except (TypeError, ValueError):
            return _resource_bytes(attr, blobs)  # dense_resource (ONNX initializers)
    dense = attr
    if dense.is_splat:
        return None
    elem = str(ir.ShapedType(dense.type).element_type)
    if elem not in _WIDTH:
        return None
    try:
        arr = np.array(dense)
    except (TypeError, ValueError, RuntimeError):
        return None
    return np.ascontiguousarray(arr).tobytes()


def externalize(text: str, *, min_bytes: int = MIN_PARAM_BYTES, scope: str = SCOPE) -> Externalized:
    """Every non-splat dense constant of at least `min_bytes` becomes an immutable `util.global`
    initialized from `#stream.parameter.named<scope::sha256>`, read with `util.global.load`.
    The text keeps no weights; the returned params hold them, one entry per distinct content."""
    from iree.compiler import ir

    params: dict[str, bytes] = {}
    blobs = _resources(text)
    with ir.Context(), ir.Location.unknown():
        module = ir.Module.parse(text)
        found: list[tuple[Any, str]] = []
        _constants(module.operation, found)
        globals_: dict[tuple[str, str], str] = {}
        for op, attr_name in found:
            attr = op.attributes[attr_name]
            data = _raw_bytes(attr, blobs)
            if data is None or len(data) < min_bytes:
                continue
            key = hashlib.sha256(data).hexdigest()
            params[key] = data
            ty = str(attr.type)
            name = globals_.get((key, ty))
            if name is None:
                name = globals_[(key, ty)] = f"__planc_param_{key[:16]}_{len(globals_)}"
                init = ir.Attribute.parse(f'#stream.parameter.named<"{scope}"::"{key}"> : {ty}')
                with ir.InsertionPoint.at_block_begin(module.body):
                    ir.Operation.create("util.global", attributes={
                        "sym_name": ir.StringAttr.get(name), "sym_visibility": ir.StringAttr.get("private"),
                        "type": ir.TypeAttr.get(attr.type), "initial_value": init})
            with ir.InsertionPoint(op):
                load = ir.Operation.create("util.global.load", results=[attr.type], attributes={
                    "global": ir.FlatSymbolRefAttr.get(name), "is_immutable": ir.UnitAttr.get()})
                value = load.results[0]
                if op.results[0].type != attr.type:  # a torch value tensor: convert the builtin tensor
                    value = ir.Operation.create("torch_c.from_builtin_tensor", results=[op.results[0].type],
                                                operands=[value]).results[0]
            op.results[0].replace_all_uses_with(value)
            op.operation.erase()
        out = module.operation.get_asm(enable_debug_info=False)
    return Externalized(out, params)


def write_archive(params: Mapping[str, bytes]) -> bytes:
    """One IREE parameter archive (.irpa) holding `params`, entries in key order: the same
    parameters give the same bytes."""
    import numpy as np
    from iree import runtime as rt

    index = rt.ParameterIndex()
    for key in sorted(params):
        index.add_buffer(key, np.frombuffer(params[key], dtype=np.uint8))
    fd, tmp = tempfile.mkstemp(suffix=".irpa")
    os.close(fd)
    try:
        index.create_archive_file(tmp)
        with open(tmp, "rb") as f:
            return f.read()
    finally:
        os.unlink(tmp)
