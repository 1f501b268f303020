"""Prepares an ONNX model for IREE: opset upgrade (>= 17), input dims pinned from the task's
types, shape inference with data propagation, constant folding (onnxscript), then IREE's ONNX
import to torch-dialect MLIR with the entry renamed `main`. Cached by content.

The order matters (measured on PP-OCR, opset 11): IREE cannot lower an opset-11
BatchNormalization, and pinning dims before the upgrade breaks ONNX's shape inference on
Shape->Slice->Concat->Reshape chains; dynamic dims make IREE's codegen fail or run slower;
a PyTorch TransformerEncoder leaves a Transpose of a rank-0 value that only folding removes.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from planc.compiler.ir.graph import CostFacts, ModelDecl
from planc.compiler.models.load import ModelError, python_error
from planc.compiler.models.onnx_costs import onnx_cost_facts
from planc.compiler.models.onnx_file import (
    check_args,
    declared_inputs,
    elem_name,
    file_digest,
    load_onnx,
    opset_of,
)
from planc.dsl.ast import TensorType
from planc.runtime.contract.dtypes import dtype_of_onnx

__all__ = ["TARGET_OPSET", "PreparedOnnx", "prepare_onnx", "prepared_key"]

TARGET_OPSET = 17
_CONTROL_FLOW = {"If", "Loop", "Scan"}
_PREP_VERSION = "planc-onnx-prep-v1"
_memo: dict[str, PreparedOnnx] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class PreparedOnnx:
    """An ONNX model prepared for these input types: its import as MLIR text (entry `main`),
    its input names and output types, the opsets before and after, and its cost facts."""

    mlir: str
    input_names: tuple[str, ...]
    outputs: tuple[TensorType, ...]
    output_names: tuple[str, ...]
    opset: int
    prepared_opset: int
    facts: CostFacts


def prepared_key(digest: str, types: Sequence[TensorType]) -> str:
    import onnx
    import onnxscript
    from iree.compiler import version

    h = hashlib.sha256(f"{_PREP_VERSION} onnx={onnx.__version__} onnxscript={onnxscript.__version__} "
                       f"iree={version.VERSION} {digest}".encode())
    h.update(repr([str(t) for t in types]).encode())
    return h.hexdigest()


def prepare_onnx(decl: ModelDecl, types: Sequence[TensorType], store: Any = None) -> PreparedOnnx:
    """The prepared model for these input types; raises ModelError (E0302 unreadable file,
    E0305 opset, E0111/E0301 inputs, E0303 shape inference, E0304 outputs, E0306 an op or
    construct IREE cannot lower). `store` (a codegen Cache) keeps results across processes."""
    types = tuple(types)
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as e:
        raise ModelError("E0302", f"ONNX model '{decl.name}' needs the '{e.name}' package, which is not "
                         "installed", help="pip install 'planc[compiler]' (it brings onnx and onnxscript)") from None
    if not decl.path.is_file():
        raise ModelError("E0302", f"ONNX file '{decl.path.name}' not found at {decl.path}")
    key = prepared_key(file_digest(decl.path), types)
    with _lock:
        if key in _memo:
            return _memo[key]
    hit = store.get(key) if store is not None else None
    prepared = _from_json(hit) if hit else _prepare(decl, types)
    if store is not None and not hit:
        store.put(key, _to_json(prepared))
    with _lock:
        _memo[key] = prepared
    return prepared


def _prepare(decl: ModelDecl, types: tuple[TensorType, ...]) -> PreparedOnnx:
    model = load_onnx(decl)
    inputs = declared_inputs(model)
    check_args(decl, inputs, types)
    opset = opset_of(model)
    model = _upgrade(decl, model, opset)
    _pin(model, inputs, types)
    model = _infer(decl, model, types)
    model = _fold(decl, model, types)
    _check_nodes(decl, model)
    outputs = _outputs(decl, model)
    mlir = _import(decl, model)
    return PreparedOnnx(mlir, tuple(i.name for i in inputs), outputs, tuple(o.name for o in model.graph.output),
                        opset, opset_of(model), onnx_cost_facts(model))


def _upgrade(decl: ModelDecl, model: Any, opset: int) -> Any:
    if opset >= TARGET_OPSET:
        return model
    import onnx.version_converter

    try:
        return onnx.version_converter.convert_version(model, TARGET_OPSET)
    except Exception as e:  # noqa: BLE001 - the converter raises RuntimeError, ValueError, ...
        raise ModelError("E0305", f"cannot upgrade '{decl.path.name}' from opset {opset} to {TARGET_OPSET}: "
                         f"{python_error(e)}", help=f"re-export the model at opset {TARGET_OPSET} or newer") from None


def _pin(model: Any, inputs: Sequence[Any], types: Sequence[TensorType]) -> None:
    """Fixes every graph input's dims and dtype to the passed type; forgets inferred shapes."""
    by_name = {i.name: t for i, t in zip(inputs, types)}
    for vi in model.graph.input:
        t = by_name.get(vi.name)
        if t is None:
            continue
        tt = vi.type.tensor_type
        tt.elem_type = t.dtype.info.onnx
        tt.ClearField("shape")
        tt.shape.SetInParent()
        for d in t.shape:
            tt.shape.dim.add().dim_value = d
    for vi in model.graph.output:
        vi.type.tensor_type.ClearField("shape")
    del model.graph.value_info[:]


def _infer(decl: ModelDecl, model: Any, types: Sequence[TensorType]) -> Any:
    from onnx import shape_inference

    try:
        return shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
    except Exception as e:  # noqa: BLE001 - InferenceError and friends
        sig = ", ".join(map(str, types))
        msg = " ".join(str(e).split())[:400]
        raise ModelError("E0303", f"ONNX shape inference of '{decl.path.name}' fails with inputs ({sig}): {msg}",
                         help="check the input shapes the model expects") from None


def _fold(decl: ModelDecl, model: Any, types: Sequence[TensorType]) -> Any:
    import onnxscript.optimizer

    try:
        folded = onnxscript.optimizer.optimize(model)
    except Exception as e:  # noqa: BLE001 - onnxscript raises many kinds of error
        raise ModelError("E0303", f"constant folding of '{decl.path.name}' failed: {python_error(e)}") from None
    return _infer(decl, folded, types)


def _check_nodes(decl: ModelDecl, model: Any) -> None:
    opset = opset_of(model)
    for node in model.graph.node:
        where = f"node '{node.name or node.output[0]}', opset {opset}"
        if node.domain not in ("", "ai.onnx"):
            raise ModelError("E0306", f"'{decl.path.name}' uses op '{node.domain}.{node.op_type}' ({where}), "
                             "outside the standard ONNX domain, which IREE cannot lower",
                             help="export without custom or contrib ops (e.g. no onnxruntime fusions)")
        if node.op_type in _CONTROL_FLOW:
            raise ModelError("E0306", f"'{decl.path.name}' uses op '{node.op_type}' ({where}): control flow "
                             "on data, which IREE cannot lower", help="rewrite the model without data-dependent "
                             "control flow (e.g. compute both branches and select), then re-export")


def _outputs(decl: ModelDecl, model: Any) -> tuple[TensorType, ...]:
    from planc.runtime.contract.dtypes import DType

    out = []
    for o in model.graph.output:
        tt = o.type.tensor_type
        dtype = dtype_of_onnx(int(tt.elem_type))
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
        if dtype is None:
            raise ModelError("E0304", f"model '{decl.name}' output '{o.name}' is ONNX {elem_name(tt.elem_type)}, "
                             "which planc does not support",
                             help=f"cast it in the model to one of: {', '.join(d.value for d in DType)}")
        if not tt.HasField("shape") or any(d is None for d in dims):
            raise ModelError("E0304", f"model '{decl.name}' output '{o.name}' has no static shape after "
                             "preparation (its size depends on the data)",
                             help="planc needs every output's shape fixed by the input shapes")
        out.append(TensorType(dtype, tuple(int(d) for d in dims)))  # type: ignore[arg-type]
    return tuple(out)


_LEGALIZE = re.compile(r'error: "([^"]*)": failed to legalize operation .*?name = "onnx\.(\w+)"')


def _import(decl: ModelDecl, model: Any) -> str:
    """IREE's ONNX import; then a trial of IREE's onnx->torch conversion, so that an op IREE
    cannot lower is named here (op, node, opset), not deep inside iree-compile."""
    from iree.compiler import ir, passmanager
    from iree.compiler.extras import onnx_importer

    with ir.Context() as ctx:
        try:
            info = onnx_importer.ModelInfo(model)
            module = info.create_module(context=ctx).operation
            onnx_importer.NodeImporter.define_function(info.main_graph, module).import_all()
            module.verify()
        except Exception as e:  # noqa: BLE001 - the importer raises OnnxImportError and others
            raise ModelError("E0306", f"IREE cannot import '{decl.path.name}': {python_error(e)}") from None
        _rename_entry(module, info.main_graph.graph_proto.name)
        text = module.get_asm(enable_debug_info=False)
        trial = ir.Module.parse(module.get_asm(enable_debug_info=True), ctx)
        try:
            passmanager.PassManager.parse("builtin.module(func.func(convert-torch-onnx-to-torch))").run(
                trial.operation)
        except Exception as e:  # noqa: BLE001 - MLIRError with the diagnostics
            raise _unsupported(decl, model, str(e)) from None
    return text


def _rename_entry(module: Any, graph_name: str) -> None:
    from iree.compiler import ir

    for op in module.regions[0].blocks[0].operations:
        if op.operation.name == "func.func" and ir.StringAttr(op.attributes["sym_name"]).value == graph_name:
            op.attributes["sym_name"] = ir.StringAttr.get("main")


def _unsupported(decl: ModelDecl, model: Any, text: str) -> ModelError:
    m = _LEGALIZE.search(text)
    opset = opset_of(model)
    if not m:
        first = next((ln.strip() for ln in text.splitlines() if "error" in ln), text.strip()[:300])
        return ModelError("E0306", f"IREE cannot lower '{decl.path.name}' (opset {opset}): {first}")
    node_name, op = m.group(1), m.group(2)
    node = next((n for n in model.graph.node if n.name == node_name), None)
    shown = node_name if node is not None or node_name else "(unnamed)"
    return ModelError("E0306", f"IREE cannot lower ONNX op '{op}' (node '{shown}', opset {opset}) in "
                      f"'{decl.path.name}'", help="IREE's ONNX importer has no lowering for this op with "
                      "these attributes and types; rewrite that part of the model or export it differently")


def _to_json(p: PreparedOnnx) -> bytes:
    f = p.facts
    return json.dumps({"mlir": p.mlir, "inputs": list(p.input_names), "output_names": list(p.output_names),
                       "outputs": [[t.dtype.value, list(t.shape)] for t in p.outputs], "opset": p.opset,
                       "prepared_opset": p.prepared_opset,
                       "facts": [f.flops, f.bytes_accessed, f.dispatches, f.working_set, f.vector_flops]}).encode()


def _from_json(data: bytes) -> PreparedOnnx:
    from planc.runtime.contract.dtypes import DType

    d = json.loads(data)
    fl, by, di, ws, vf = d["facts"]
    return PreparedOnnx(d["mlir"], tuple(d["inputs"]), tuple(TensorType(DType.parse(t), tuple(s)) for t, s in d["outputs"]),
                        tuple(d["output_names"]), d["opset"], d["prepared_opset"], CostFacts(fl, by, int(di), ws, vf))
