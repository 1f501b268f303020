"""Reads an ONNX file for the compiler: loads it (external data beside it), checks its opset and
declared inputs, and matches the types a task passes against them. Errors are ModelErrors."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from planc.compiler.ir.graph import ModelDecl
from planc.compiler.models.load import ModelError, python_error
from planc.dsl.ast import TensorType
from planc.runtime.contract.dtypes import dtype_of_onnx

__all__ = [
    "MIN_OPSET",
    "OnnxInput",
    "check_args",
    "declared_inputs",
    "file_digest",
    "load_onnx",
    "max_opset",
    "opset_of",
]

MIN_OPSET = 7  # onnx.version_converter's adapters start here
# The names of ONNX TensorProto element types planc has no dtype for (those it has are the
# vocabulary's: planc.runtime.contract.dtypes, its `onnx` column).
_OTHER_ELEM_NAMES = {2: "uint8", 4: "uint16", 5: "int16", 8: "string", 11: "float64", 12: "uint32",
                     13: "uint64"}


@dataclass(frozen=True, slots=True)
class OnnxInput:
    """A graph input as the file declares it: dims are ints, or names/None for free dims."""

    name: str
    elem: int
    dims: tuple[int | str | None, ...] | None  # None: the file gives no shape at all

    def shown(self) -> str:
        dtype = dtype_of_onnx(self.elem)
        dt = dtype.value if dtype else _OTHER_ELEM_NAMES.get(self.elem, f"elem type {self.elem}")
        if self.dims is None:
            return f"{dt}[...]"
        return f"{dt}[{', '.join('?' if d is None else str(d) for d in self.dims)}]"


def max_opset() -> int:
    """The newest default-domain opset the installed onnx package knows."""
    import onnx

    return int(onnx.defs.onnx_opset_version())


def elem_name(elem: int) -> str:
    dtype = dtype_of_onnx(elem)
    return dtype.numpy if dtype is not None else _OTHER_ELEM_NAMES.get(elem, f"element type {elem}")


def opset_of(model: Any) -> int:
    """The default-domain ("" or "ai.onnx") opset the model imports."""
    for op in model.opset_import:
        if op.domain in ("", "ai.onnx"):
            return int(op.version)
    return 1


def _external_files(model: Any) -> list[str]:
    from onnx.external_data_helper import uses_external_data

    out: set[str] = set()
    for t in model.graph.initializer:
        if uses_external_data(t):
            out.update(e.value for e in t.external_data if e.key == "location")
    return sorted(out)


def file_digest(path: Path) -> str:
    """sha256 over the .onnx file and every external data file it names (what preparation reads)."""
    import onnx

    h = hashlib.sha256(path.read_bytes())
    try:
        skeleton = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 - a bad file is reported by load_onnx
        return h.hexdigest()
    for name in _external_files(skeleton):
        f = path.parent / name
        h.update(name.encode())
        h.update(hashlib.sha256(f.read_bytes()).digest() if f.is_file() else b"missing")
    return h.hexdigest()


def load_onnx(decl: ModelDecl) -> Any:
    """The ModelProto with its weights: E0302 for a missing, truncated or non-ONNX file or missing
    external data, E0305 for an opset planc cannot upgrade from or does not know."""
    import onnx

    path = decl.path
    if not path.is_file():
        raise ModelError("E0302", f"ONNX file '{path.name}' not found at {path}")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # noqa: BLE001 - protobuf raises DecodeError, RuntimeWarning and more
        raise ModelError("E0302", f"'{path.name}' is not a readable ONNX file ({python_error(e)}); "
                         "is it truncated?", help="re-export or re-download the file") from None
    if not model.graph.node and not model.graph.output:
        raise ModelError("E0302", f"'{path.name}' holds no ONNX graph (empty or not an ONNX file)",
                         help="re-export or re-download the file")
    missing = [n for n in _external_files(model) if not (path.parent / n).is_file()]
    if missing:
        raise ModelError("E0302", f"'{path.name}' keeps its weights in external data file "
                         f"'{missing[0]}', which is not beside it in {path.parent}",
                         help="copy the external data file(s) next to the .onnx file")
    try:
        onnx.load_external_data_for_model(model, str(path.parent))
    except Exception as e:  # noqa: BLE001 - short or unreadable external data
        raise ModelError("E0302", f"cannot read the external data of '{path.name}': {python_error(e)}") from None
    _check_opset(model, path)
    return model


def _check_opset(model: Any, path: Path) -> None:
    opset, newest = opset_of(model), max_opset()
    if opset > newest:
        raise ModelError("E0305", f"'{path.name}' uses ONNX opset {opset}, newer than supported "
                         f"(at most {newest}, onnx {__import__('onnx').__version__})",
                         help=f"export at an opset between {MIN_OPSET} and {newest} (17 is safest)")
    if opset < MIN_OPSET:
        raise ModelError("E0305", f"'{path.name}' uses ONNX opset {opset}, older than supported "
                         f"(at least {MIN_OPSET})", help="re-export at opset 17")


def declared_inputs(model: Any) -> tuple[OnnxInput, ...]:
    """The graph's real inputs (initializers listed as inputs, as old exporters do, left out)."""
    inits = {t.name for t in model.graph.initializer}
    out = []
    for i in model.graph.input:
        if i.name in inits:
            continue
        tt = i.type.tensor_type
        dims = None
        if tt.HasField("shape"):
            dims = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else (d.dim_param or None)
                         for d in tt.shape.dim)
        out.append(OnnxInput(i.name, int(tt.elem_type), dims))
    return tuple(out)


def check_args(decl: ModelDecl, inputs: Sequence[OnnxInput], types: Sequence[TensorType]) -> None:
    """Each passed type must fit the declared input: same dtype, rank, and every fixed dim."""
    if len(inputs) != len(types):
        names = ", ".join(f"'{i.name}' {i.shown()}" for i in inputs)
        raise ModelError("E0111", f"model '{decl.name}' takes {len(inputs)} input{'s' * (len(inputs) != 1)} "
                         f"({names}), the task passes {len(types)}", "task")
    for k, (want, got) in enumerate(zip(inputs, types)):
        why = _mismatch(want, got)
        if why:
            raise ModelError("E0301", f"model '{decl.name}' input '{want.name}' is declared {want.shown()} in "
                             f"'{decl.path.name}', got {got}: {why}", "arg", k,
                             help=f"pass a value of type {_suggest(want, got)}")


def _mismatch(want: OnnxInput, got: TensorType) -> str:
    dtype = dtype_of_onnx(want.elem)
    if dtype is None:
        return f"planc has no dtype for ONNX {elem_name(want.elem)}"
    if dtype is not got.dtype:
        return f"dtype {got.dtype.value} is not {dtype.value}"
    if want.dims is None:
        return ""
    if len(want.dims) != len(got.shape):
        return f"rank {len(got.shape)} is not {len(want.dims)}"
    for i, (w, g) in enumerate(zip(want.dims, got.shape)):
        if isinstance(w, int) and w > 0 and w != g:
            return f"dim {i} is {g}, the file fixes it at {w}"
    return ""


def _suggest(want: OnnxInput, got: TensorType) -> str:
    dtype = dtype_of_onnx(want.elem) or got.dtype
    if want.dims is None or len(want.dims) != len(got.shape):
        dims = want.dims or ()
        return f"{dtype.value}[{', '.join(str(d) if isinstance(d, int) and d > 0 else 'N' for d in dims)}]"
    dims = [w if isinstance(w, int) and w > 0 else g for w, g in zip(want.dims, got.shape)]
    return f"{dtype.value}[{', '.join(map(str, dims))}]"
