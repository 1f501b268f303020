"""The Open Inference Protocol's tensors: JSON and binary-data requests in, responses out (no HTTP here)."""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from planc.runtime.api.results import OutputKind, Result
from planc.runtime.api.signature import TensorSpec
from planc.runtime.contract.dtypes import DType, numpy_dtype

__all__ = ["DATATYPES", "BadRequest", "InferRequest", "datatype", "encode_response", "parse_request",
           "tensor_metadata"]

# planc dtype -> OIP datatype.
DATATYPES = {d.value: d.info.oip for d in DType}
_BY_OIP = {d.info.oip: d for d in DType}
JSON_DATATYPE = "BYTES"  # a tool's untyped (JSON) result: one BYTES element holding the JSON text


try:  # the serve extra brings orjson: parses a request's numbers ~6x faster than the json module
    from orjson import JSONDecodeError as _JSONError
    from orjson import loads as _loads
except ImportError:  # pragma: no cover (planc[serve] installs it)
    from json import JSONDecodeError as _JSONError  # type: ignore[assignment]
    from json import loads as _loads  # type: ignore[assignment]


class BadRequest(ValueError):
    """A request the server cannot run: the message names the input or field that is wrong."""


def datatype(spec: TensorSpec) -> str:
    return JSON_DATATYPE if spec.dtype is None else DATATYPES[spec.dtype]


def tensor_metadata(spec: TensorSpec) -> dict[str, Any]:
    """`{"name", "datatype", "shape"}` of an input or output (a JSON output: BYTES of shape [1])."""
    shape = [1] if spec.dtype is None else list(spec.shape or ())
    return {"name": spec.name, "datatype": datatype(spec), "shape": shape}


@dataclass
class InferRequest:
    """A parsed request: its id, inputs as arrays of the declared dtypes, the outputs asked for
    (None: all) with which ones go back as binary data."""

    id: str | None
    inputs: dict[str, np.ndarray]
    outputs: list[str] | None
    binary: dict[str, bool]
    binary_default: bool


def _np_dtype(dt: str) -> np.dtype:
    return numpy_dtype(_BY_OIP[dt].value)


def parse_request(body: bytes, header_length: int | None, specs: Sequence[TensorSpec],
                  output_names: Sequence[str]) -> InferRequest:
    """An OIP infer request (JSON, or the binary-data extension when `header_length` is given)."""
    if header_length is not None:
        if header_length < 0 or header_length > len(body):
            raise BadRequest(f"Inference-Header-Content-Length {header_length} is outside the body "
                             f"({len(body)} bytes)")
        head, binary = body[:header_length], memoryview(body)[header_length:]
    else:
        head, binary = body, memoryview(b"")
    try:
        doc = _loads(head)
    except (UnicodeDecodeError, _JSONError) as e:
        raise BadRequest(f"the request body is not valid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise BadRequest("the request body must be a JSON object with 'inputs'")
    raw_inputs = doc.get("inputs")
    if not isinstance(raw_inputs, list):
        raise BadRequest("the request needs 'inputs': a list of {name, shape, datatype, data}")
    declared = {s.name: s for s in specs}
    inputs: dict[str, np.ndarray] = {}
    offset = 0
    for t in raw_inputs:
        if not isinstance(t, dict) or not isinstance(t.get("name"), str):
            raise BadRequest("every entry of 'inputs' needs a 'name'")
        name = t["name"]
        spec = declared.get(name)
        if spec is None:
            raise BadRequest(f"unknown input '{name}'; the model takes: {', '.join(declared)}")
        if name in inputs:
            raise BadRequest(f"input '{name}' is given twice")
        inputs[name], offset = _tensor(t, spec, binary, offset)
    missing = [n for n in declared if n not in inputs]
    if missing:
        s = declared[missing[0]]
        raise BadRequest(f"missing input '{s.name}' ({datatype(s)}{list(s.shape or ())})")
    if offset != len(binary):
        raise BadRequest(f"{len(binary) - offset} bytes of binary data after the last input")
    params = doc.get("parameters") or {}
    binary_default = bool(params.get("binary_data_output", False)) if isinstance(params, dict) else False
    outputs, flags = _outputs(doc.get("outputs"), output_names)
    rid = doc.get("id")
    return InferRequest(str(rid) if rid is not None else None, inputs, outputs, flags, binary_default)


def _tensor(t: Mapping[str, Any], spec: TensorSpec, binary: memoryview, offset: int) -> tuple[np.ndarray, int]:
    name, want = spec.name, datatype(spec)
    if t.get("datatype") != want:
        raise BadRequest(f"input '{name}' has datatype {t.get('datatype')!r}, the model declares {want}")
    shape = t.get("shape")
    if not isinstance(shape, list) or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise BadRequest(f"input '{name}' needs 'shape': a list of non-negative integers")
    if list(shape) != list(spec.shape or ()):
        raise BadRequest(f"input '{name}' has shape {shape}, the model declares {want}{list(spec.shape or ())}")
    dtype = _np_dtype(want)
    params = t.get("parameters") or {}
    size = params.get("binary_data_size") if isinstance(params, dict) else None
    count = int(np.prod(shape, dtype=np.int64))
    if size is not None:
        if not isinstance(size, int) or size != count * dtype.itemsize:
            raise BadRequest(f"input '{name}' has binary_data_size {size!r}, expected {count * dtype.itemsize} "
                             f"for {want}{shape}")
        if offset + size > len(binary):
            raise BadRequest(f"input '{name}': the body ends before its {size} bytes of binary data")
        arr = np.frombuffer(binary[offset:offset + size], dtype=dtype).reshape(shape).copy()
        return arr, offset + size
    if "data" not in t:
        raise BadRequest(f"input '{name}' has no 'data' (and no binary_data_size)")
    try:
        arr = np.asarray(t["data"], dtype=dtype)
    except (TypeError, ValueError) as e:
        raise BadRequest(f"input '{name}': data is not {want} ({e})") from None
    if arr.size != count:
        raise BadRequest(f"input '{name}' has {arr.size} data elements, shape {shape} needs {count}")
    if dtype.kind in "iu" and not _integral(t["data"]):
        raise BadRequest(f"input '{name}': data is not {want} (found non-integer values)")
    return arr.reshape(shape), offset


def _integral(data: Any) -> bool:
    a = np.asarray(data)
    return a.dtype.kind in "biu"


def _outputs(raw: Any, names: Sequence[str]) -> tuple[list[str] | None, dict[str, bool]]:
    if raw is None:
        return None, {}
    if not isinstance(raw, list):
        raise BadRequest("'outputs' must be a list of {name, parameters}")
    asked, flags = [], {}
    for o in raw:
        if not isinstance(o, dict) or not isinstance(o.get("name"), str):
            raise BadRequest("every entry of 'outputs' needs a 'name'")
        if o["name"] not in names:
            raise BadRequest(f"unknown output '{o['name']}'; the model gives: {', '.join(names)}")
        asked.append(o["name"])
        p = o.get("parameters") or {}
        if isinstance(p, dict) and "binary_data" in p:
            flags[o["name"]] = bool(p["binary_data"])
    return asked, flags


def encode_response(model: str, req: InferRequest, result: Result,
                    specs: Sequence[TensorSpec]) -> tuple[bytes, int | None]:
    """(body, JSON header length or None) of the response. Skipped outputs are left out of `outputs`
    and named in `parameters.skipped`; a rejected run says so in `parameters.status`/`rejected_by`."""
    by_name = {s.name: s for s in specs}
    names = req.outputs if req.outputs is not None else [s.name for s in specs]
    outputs, chunks = [], []
    skipped = [n for n, o in result.outputs.items() if o.kind is OutputKind.SKIPPED]
    for name in names:
        out = result.outputs[name]
        if out.kind is OutputKind.SKIPPED:
            continue
        spec = by_name[name]
        binary = req.binary.get(name, req.binary_default)
        if out.kind is OutputKind.JSON or spec.dtype is None:
            text = json.dumps(out.value if out.kind is OutputKind.JSON else np.asarray(out.value).tolist())
            entry: dict[str, Any] = {"name": name, "datatype": JSON_DATATYPE, "shape": [1],
                                     "parameters": {"content_type": "application/json"}}
            if binary:
                raw = text.encode()
                chunk = struct.pack("<I", len(raw)) + raw
                entry["parameters"]["binary_data_size"] = len(chunk)
                chunks.append(chunk)
            else:
                entry["data"] = [text]
            outputs.append(entry)
            continue
        arr = np.asarray(out.value)
        entry = {"name": name, "datatype": datatype(spec), "shape": list(arr.shape)}
        if binary:
            raw = np.ascontiguousarray(arr).tobytes()
            entry["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            entry["data"] = arr.reshape(-1).tolist()
        outputs.append(entry)
    params: dict[str, Any] = {"status": result.status.value}
    if skipped:
        params["skipped"] = skipped
    if result.rejected_by:
        params["rejected_by"] = result.rejected_by
    if result.replayed:
        params["replayed"] = True
    doc: dict[str, Any] = {"model_name": model, "model_version": result.model_version, "outputs": outputs,
                           "parameters": params}
    if req.id is not None:
        doc["id"] = req.id
    head = json.dumps(doc, separators=(",", ":")).encode()
    if not chunks:
        return head, None
    return head + b"".join(chunks), len(head)
