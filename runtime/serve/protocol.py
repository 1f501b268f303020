"""The Open Inference Protocol's tensors: JSON and binary-data requests in, responses out (no HTTP here)."""

from __future__ import annotations

import json
import math
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
# OIP datatypes that no plan declares but a client may send: read as sent, then converted by
# plan.run under the one input rule (FP64 data that fits an FP32 input is accepted).
_WIRE_ONLY = {"FP64": "float64", "INT16": "int16", "UINT8": "uint8", "UINT16": "uint16", "UINT32": "uint32",
              "UINT64": "uint64"}
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
    if dt in _WIRE_ONLY:
        return np.dtype(_WIRE_ONLY[dt])
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
    given = t.get("datatype")
    # Another numeric datatype is read as sent; plan.run converts it under the rule that `planrt run`
    # and the embedded API follow too (only where every value is kept: FP64 1e300 is not an FP32).
    if given != want and (want == JSON_DATATYPE or not isinstance(given, str) or given not in _BY_OIP and
                          given not in _WIRE_ONLY):
        raise BadRequest(f"input '{name}' has datatype {given!r}, the model declares {want}")
    shape = t.get("shape")
    if not isinstance(shape, list) or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise BadRequest(f"input '{name}' needs 'shape': a list of non-negative integers")
    if list(shape) != list(spec.shape or ()):
        raise BadRequest(f"input '{name}' has shape {shape}, the model declares {want}{list(spec.shape or ())}")
    dtype = _np_dtype(given)
    params = t.get("parameters") or {}
    size = params.get("binary_data_size") if isinstance(params, dict) else None
    count = int(np.prod(shape, dtype=np.int64))
    if size is not None:
        if not isinstance(size, int) or size != count * dtype.itemsize:
            raise BadRequest(f"input '{name}' has binary_data_size {size!r}, expected {count * dtype.itemsize} "
                             f"for {given}{shape}")
        if offset + size > len(binary):
            raise BadRequest(f"input '{name}': the body ends before its {size} bytes of binary data")
        arr = np.frombuffer(binary[offset:offset + size], dtype=dtype).reshape(shape).copy()
        return arr, offset + size
    if "data" not in t:
        raise BadRequest(f"input '{name}' has no 'data' (and no binary_data_size)")
    arr = json_array(t["data"], dtype, name, given)
    if arr.size != count:
        raise BadRequest(f"input '{name}' has {arr.size} data elements, shape {shape} needs {count}")
    if dtype.kind in "iu" and not _integral(t["data"]):
        raise BadRequest(f"input '{name}': data is not {given} (found non-integer values)")
    return arr.reshape(shape), offset


_NONFINITE = {"NaN": math.nan, "nan": math.nan, "Infinity": math.inf, "inf": math.inf, "-Infinity": -math.inf,
              "-inf": -math.inf}
_SPELL = {math.inf: "Infinity", -math.inf: "-Infinity"}


def json_array(data: Any, dtype: np.dtype, name: str, want: str) -> np.ndarray:
    """`data` as an array of `dtype`. Numbers only (booleans only for BOOL); for float types the
    strings "NaN", "Infinity" and "-Infinity" too (strict JSON has no such numbers). null, true
    or text in FP32 data is an error, not a silent 0, 1 or cast."""
    raw = np.asarray(data) if isinstance(data, list) else np.asarray([data])
    kind = raw.dtype.kind
    ok = (kind == "b") if dtype.kind == "b" else kind in "iuf" and not _has_bool(data)
    if not ok and kind in "OU" and dtype.kind not in "biu":
        flat = _flatten(data if isinstance(data, list) else [data])
        if flat is not None and all(isinstance(v, str) and v in _NONFINITE or _number(v) for v in flat):
            raw, ok = np.array([_NONFINITE[v] if isinstance(v, str) else v for v in flat], np.float64), True
    if not ok:
        found = {"b": "true/false", "O": "null, text or nested lists of unequal length", "U": "text"}.get(kind, kind)
        raise BadRequest(f"input '{name}': data is not {want} (found {found})")
    try:
        return raw.astype(dtype)
    except (TypeError, ValueError, OverflowError) as e:
        raise BadRequest(f"input '{name}': data is not {want} ({e})") from None


def _has_bool(data: Any) -> bool:
    """numpy reads [0.5, true] as [0.5, 1.0]: find the true."""
    flat = data if isinstance(data, list) and not (data and isinstance(data[0], list)) else _flatten([data])
    return any(type(v) is bool for v in flat or ())


def _flatten(data: list[Any]) -> list[Any] | None:
    """The leaves of nested lists, in order (None past a few levels: not tensor data)."""
    out: list[Any] = []
    stack = [(data, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, list):
            if depth > 32:
                return None
            stack.extend((v, depth + 1) for v in reversed(item))
        else:
            out.append(item)
    return out


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def finite_json(value: Any) -> Any:
    """`value` with NaN and infinities spelled "NaN", "Infinity", "-Infinity" (as protobuf's JSON
    mapping spells them), so strict JSON parsers read the response."""
    if isinstance(value, float):
        return value if math.isfinite(value) else _SPELL.get(value, "NaN")
    if isinstance(value, list):
        return [finite_json(v) for v in value]
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    return value


def _all_finite(arr: np.ndarray) -> bool:
    try:
        return bool(np.isfinite(arr).all())
    except TypeError:  # a dtype numpy cannot test: check each value
        return False


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
            text = json.dumps(finite_json(out.value if out.kind is OutputKind.JSON
                                          else np.asarray(out.value).tolist()), allow_nan=False)
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
            flat = arr.reshape(-1).tolist()
            entry["data"] = flat if arr.dtype.kind in "biu" or _all_finite(arr) else finite_json(flat)
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
    head = json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()
    if not chunks:
        return head, None
    return head + b"".join(chunks), len(head)
