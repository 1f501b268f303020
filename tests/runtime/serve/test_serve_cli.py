"""`planrt serve` without the serve extra says how to install it; the OIP tensor codec on its own."""

from __future__ import annotations

import importlib.util
import json
import struct

import numpy as np
import pytest
from planc.runtime.api.results import Output, Result
from planc.runtime.api.signature import TensorSpec
from planc.runtime.cli import main
from planc.runtime.engine.executor import RunStatus
from planc.runtime.serve.protocol import BadRequest, encode_response, parse_request


def test_serve_without_the_extra_says_how_to_install_it(monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a))
    assert main(["serve", "x.planb"]) == 1
    err = capsys.readouterr().err
    assert "pip install 'planc[serve]'" in err and "missing: uvicorn" in err


SPECS = (TensorSpec("x", "f32", (2, 2)), TensorSpec("n", "i32", ()))
OUTS = (TensorSpec("y", "f32", (2,)), TensorSpec("note", None, None), TensorSpec("gone", "f32", ()))


def test_binary_request_and_response_round_trip():
    x = np.arange(4, dtype=np.float32).reshape(2, 2)
    head = json.dumps({"id": "7", "inputs": [
        {"name": "x", "shape": [2, 2], "datatype": "FP32", "parameters": {"binary_data_size": 16}},
        {"name": "n", "shape": [], "datatype": "INT32", "data": [3]}],
        "parameters": {"binary_data_output": True}}).encode()
    req = parse_request(head + x.tobytes(), len(head), SPECS, [s.name for s in OUTS])
    np.testing.assert_array_equal(req.inputs["x"], x)
    assert req.inputs["n"].dtype == np.int32 and req.inputs["n"].shape == () and req.id == "7"
    result = Result(RunStatus.COMPLETED, {"y": Output.of("y", np.array([1.5, 2.5], np.float32)),
                                          "note": Output.of("note", {"ok": True}), "gone": Output.of("gone", None)},
                    "abc")
    body, n = encode_response("m", req, result, OUTS)
    assert n is not None
    doc = json.loads(body[:n])
    assert doc["parameters"] == {"status": "completed", "skipped": ["gone"]} and doc["id"] == "7"
    assert [o["name"] for o in doc["outputs"]] == ["y", "note"]
    rest = body[n:]
    np.testing.assert_array_equal(np.frombuffer(rest[:8], np.float32), [1.5, 2.5])
    (length,) = struct.unpack("<I", rest[8:12])
    assert json.loads(rest[12:12 + length]) == {"ok": True}


@pytest.mark.parametrize("doc,message", [
    ({"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3, 4]},
                 {"name": "n", "shape": [], "datatype": "INT32", "data": [1.5]}]}, "input 'n': data is not INT32"),
    ({"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "parameters": {"binary_data_size": 16}},
                 {"name": "n", "shape": [], "datatype": "INT32", "data": [1]}]}, "input 'x': the body ends"),
    ({"inputs": [{"shape": [2]}]}, "needs a 'name'"),
    ({"inputs": [], "outputs": [{"name": "zz"}]}, "missing input 'x'"),
])
def test_bad_requests_name_what_is_wrong(doc, message):
    head = json.dumps(doc).encode()
    with pytest.raises(BadRequest, match=message):
        parse_request(head, len(head), SPECS, [s.name for s in OUTS])
