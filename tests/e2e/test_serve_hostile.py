"""`planrt serve` under hostile clients, each driven against the real server process: stalled bodies,
clients that leave, gates that give their worker back, huge bodies, unknown model names, NaNs."""

from __future__ import annotations

import json
import math
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from serve_support import ServerProcess, get, post_json, request

pytestmark = pytest.mark.iree

OPS = Path(__file__).parent / "plans" / "ops"
INFER = "/v2/models/ops/infer"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    import os

    from planc.compiler.bundle.build import BuildOptions, build_bundle

    os.environ.setdefault("PLANC_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    out = tmp_path_factory.mktemp("ops") / "ops.planb"
    build_bundle(OPS / "ops.plan", out, options=BuildOptions(progress=None))
    return out


@pytest.fixture(scope="module")
def server(bundle, tmp_path_factory):
    """One worker, one queue place, one run allowed to wait at a gate, bodies due in 1.5 s."""
    tmp = tmp_path_factory.mktemp("hostile")
    proc = ServerProcess([bundle], tmp / "state", "--workers", "1", "--max-queue", "1", "--max-waiting", "1",
                         "--body-timeout", "1.5", "--max-body", "1MiB", env={"OPS_LOG": str(tmp / "calls.jsonl")})
    proc.state = tmp / "state"
    try:
        yield proc
    finally:
        proc.stop()


def body(x=(0.1, 0.2, 0.3, 0.4), review=0.0, sleep=0.0) -> dict:
    return {"inputs": [{"name": "x", "shape": [4], "datatype": "FP32", "data": list(x)},
                       {"name": "review", "shape": [], "datatype": "FP32", "data": [review]},
                       {"name": "sleep", "shape": [], "datatype": "FP32", "data": [sleep]}]}


def stalled(url: str, path: str = INFER, length: int = 500, sent: bytes = b'{"inp') -> socket.socket:
    """A connection that sends its headers and the first bytes of its body, then nothing."""
    host, port = url.split(":")
    s = socket.create_connection((host, int(port)), timeout=10)
    s.sendall(f"POST {path} HTTP/1.1\r\nHost: {url}\r\nContent-Type: application/json\r\n"
              f"Content-Length: {length}\r\n\r\n".encode() + sent)
    return s


def status_of(s: socket.socket) -> int:
    head = s.recv(4096)
    return int(head.split(b" ", 2)[1]) if head else 0


def strict(text: bytes) -> dict:
    """JSON as orjson and JSON.parse read it: NaN and Infinity tokens are errors."""
    def refuse(token: str) -> None:
        raise ValueError(f"non-standard JSON token {token}")
    return json.loads(text, parse_constant=refuse)


def pending(url: str) -> list[dict]:
    return json.loads(get(url, "/v2/models/ops/gates")[1])["gates"]


def wait_for(cond, timeout: float = 10, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_stalled_bodies_take_no_slot_and_time_out(server):
    socks = [stalled(server.url) for _ in range(20)]  # 20 > --workers 1 + --max-queue 1
    try:
        time.sleep(0.3)
        t0 = time.monotonic()
        status, doc, _ = post_json(server.url, INFER, body(), timeout=10)
        assert status == 200 and time.monotonic() - t0 < 1.0, doc
        for s in socks:
            s.settimeout(5)
        assert {status_of(s) for s in socks} == {408}  # after --body-timeout 1.5
    finally:
        for s in socks:
            s.close()
    assert post_json(server.url, INFER, body(), timeout=5)[0] == 200


def test_a_gate_gives_its_worker_back_and_waits_are_bounded(server):
    with ThreadPoolExecutor(1) as pool:
        gated = pool.submit(post_json, server.url, INFER, body(review=1.0))
        wait_for(lambda: pending(server.url), what="the gate")
        t0 = time.monotonic()
        status, doc, _ = post_json(server.url, INFER, body(), timeout=5)  # the one worker is free
        assert status == 200 and doc["parameters"]["status"] == "completed"
        status, doc, _ = post_json(server.url, INFER, body(review=1.0), timeout=5)  # --max-waiting 1
        assert status == 200 and doc["parameters"]["rejected_by"] == "check" and time.monotonic() - t0 < 1.5
        assert b"planrt_running 0.0" in get(server.url, "/metrics")[1]
        assert gated.result()[1]["parameters"]["status"] == "rejected"  # its 2 s timeout


def test_a_client_that_leaves_cancels_its_gate(server):
    raw = json.dumps(body(review=1.0)).encode()
    s = stalled(server.url, length=len(raw), sent=raw)
    wait_for(lambda: pending(server.url), what="the gate")
    gate = pending(server.url)[0]
    t0 = time.monotonic()
    s.close()
    wait_for(lambda: not pending(server.url), 1.5, "the gate to be cancelled")
    assert time.monotonic() - t0 < 1.0  # well before its 2 s timeout
    audit = [json.loads(line) for line in (server.state / "audit.jsonl").read_text().splitlines()]
    assert any(a["event"] == "gate_cancelled" and a["id"] == gate["id"] for a in audit)


def test_a_client_gone_mid_body_leaves_no_traceback(server):
    for _ in range(5):
        stalled(server.url).close()
    time.sleep(0.3)
    assert post_json(server.url, INFER, body(), timeout=5)[0] == 200
    assert "Traceback" not in server.log.read_text()


def test_unknown_models_are_404_and_make_no_metric_series(server):
    for i in range(30):
        status, doc, _ = post_json(server.url, f"/v2/models/nosuch{i}/infer", body())
        assert status == 404 and "unknown model" in doc["error"]
    assert b"nosuch" not in get(server.url, "/metrics")[1]


def _declare_and_read(url: str, path: str, length: int) -> tuple[int, bytes]:
    """Sends only the headers of a POST whose Content-Length is `length`, then reads the answer: a
    server that refuses the body unread answers without waiting for it. (Sending the body too races
    the server's close: the client may see a broken pipe before it reads the 400.)"""
    host, port = url.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: {url}\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {length}\r\n\r\n".encode() + b"{")
        raw = b""
        while b"\r\n\r\n" not in raw or len(raw) < raw.index(b"\r\n\r\n") + 4 + _content_length(raw):
            chunk = s.recv(65536)
            if not chunk:
                break
            raw += chunk
    head, _, rest = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), rest


def _content_length(raw: bytes) -> int:
    for line in raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def test_a_body_larger_than_the_model_can_need_is_refused_unread(server):
    # 1 MiB is allowed by --max-body, but 6 floats of input never need more than ~64 KiB.
    t0 = time.monotonic()
    status, raw = _declare_and_read(server.url, INFER, 300_002)
    assert status == 400 and b"limit of" in raw and time.monotonic() - t0 < 2
    status, raw = _declare_and_read(server.url, INFER, 2 << 20)  # past --max-body itself
    assert status == 400, raw


def test_nan_in_and_out_is_strict_json_and_replays(server):
    nan_body = body(x=(math.nan, 0.2, 0.3, 0.4))
    nan_body["inputs"][0]["data"][0] = "NaN"  # what strict JSON clients can send
    first = request(server.url, INFER, json.dumps(nan_body).encode(), {"Idempotency-Key": "nan-1"})
    again = request(server.url, INFER, json.dumps(nan_body).encode(), {"Idempotency-Key": "nan-1"})
    assert first[0] == 200 and again[0] == 200, again[1]
    doc = strict(first[1])
    y = next(o for o in doc["outputs"] if o["name"] == "y")
    assert y["data"][0] == "NaN" and strict(again[1])["parameters"]["replayed"] is True
    effect = next(o for o in doc["outputs"] if o["name"] == "effect")  # the tool summed a NaN
    assert strict(effect["data"][0].encode())["sum"] == "NaN"
    for bad in (None, True):
        b = body()
        b["inputs"][0]["data"][1] = bad
        status, doc, _ = post_json(server.url, INFER, b)
        assert status == 400 and "input 'x'" in doc["error"], doc


def _fuzz_strategies():
    from hypothesis import strategies as st

    scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                        st.text(max_size=8), st.sampled_from(["NaN", "Infinity", "-Infinity", "inf"]))
    json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=6),
                                                                st.dictionaries(st.text(max_size=6), inner,
                                                                                max_size=4)), max_leaves=20)
    x_tensor = st.fixed_dictionaries(
        {"name": st.sampled_from(["x", "x", "review", "nope", ""]),
         "shape": st.one_of(st.just([4]), st.lists(st.integers(-2, 2**40), max_size=3), json_values),
         "datatype": st.sampled_from(["FP32", "FP32", "FP64", "INT32", "BYTES", "BOOL", "fp32"]),
         "data": st.one_of(st.lists(st.floats(width=32), min_size=4, max_size=4), json_values)},
        optional={"parameters": st.one_of(json_values, st.fixed_dictionaries(
            {"binary_data_size": st.one_of(st.integers(-1, 64), json_values)}))})
    fixed = [{"name": "review", "shape": [], "datatype": "FP32", "data": [0.0]},
             {"name": "sleep", "shape": [], "datatype": "FP32", "data": [0.0]}]
    docs = st.fixed_dictionaries({"inputs": st.one_of(st.lists(x_tensor, min_size=1, max_size=2).map(
        lambda xs: xs + fixed), json_values)},
        optional={"outputs": json_values, "id": json_values, "parameters": json_values})
    bodies = st.one_of(docs.map(lambda d: json.dumps(d).encode()), st.binary(max_size=64),
                       json_values.map(lambda v: json.dumps(v).encode()))
    header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=12)
    headers = st.dictionaries(
        st.sampled_from(["Inference-Header-Content-Length", "Content-Encoding", "Idempotency-Key", "Content-Type"]),
        st.one_of(header_text, st.integers(-5, 400).map(str)), max_size=3)
    return bodies, headers


def test_protocol_fuzzing_never_gets_a_500(server):
    """hypothesis over request bodies and headers: every answer is a deliberate one (no 500)."""
    import http.client

    from hypothesis import HealthCheck, given, settings

    bodies, headers = _fuzz_strategies()
    host, port = server.url.split(":")
    seen: set[int] = set()

    @settings(max_examples=200, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(raw=bodies, extra=headers)
    def one(raw: bytes, extra: dict[str, str]) -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            conn.request("POST", INFER, body=raw, headers={"Content-Type": "application/json", **extra})
            r = conn.getresponse()
            data = r.read()
        finally:
            conn.close()
        seen.add(r.status)
        assert r.status < 500, (r.status, data, raw[:200], extra)
        if r.status != 200:
            assert "error" in strict(data)

    one()
    assert 400 in seen and 200 in seen


def test_one_input_rule_for_serve_plan_run_and_planrt_run(server, bundle, tmp_path):
    import os
    import subprocess

    import numpy as np
    from planc.runtime import load
    from planc.runtime.engine.runner import InputError
    from serve_support import PLANRT

    wide = body()
    wide["inputs"][0].update(datatype="FP64", data=[1e300, 0.0, 0.0, 0.0])
    status, doc, _ = post_json(server.url, INFER, wide)
    assert status == 400 and "input 'x' has dtype float64, the plan declares f32; 1e+300 overflows f32" in doc["error"]
    wide["inputs"][0].update(datatype="FP64", data=[0.1, 0.2, 0.3, 0.4])
    assert post_json(server.url, INFER, wide)[0] == 200  # values that fit convert, as plan.run does
    x = np.array([1e300, 0, 0, 0])
    with load(bundle) as plan, pytest.raises(InputError, match="1e\\+300 overflows f32"):
        plan.run(x=x, review=np.float32(0), sleep=np.float32(0))
    files = {"x": x, "review": np.float32(0), "sleep": np.float32(0)}
    for name, value in files.items():
        np.save(tmp_path / f"{name}.npy", value)
    r = subprocess.run([str(PLANRT), "run", str(bundle), "--no-journal",
                        *[a for n in files for a in ("-i", f"{n}={tmp_path / n}.npy")]],
                       check=False, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "OPS_LOG": str(tmp_path / "l")})
    assert r.returncode == 1 and "1e+300 overflows f32" in r.stderr and "Traceback" not in r.stderr


def test_gate_and_repository_routes_fuzzed_never_get_a_500(server):
    import http.client

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    bodies, headers = _fuzz_strategies()
    paths = st.sampled_from(["/v2/models/ops/gates/", "/v2/repository/models/ops/load",
                             "/v2/repository/models/ops/unload", "/v2/models/ops/versions/"])
    host, port = server.url.split(":")

    @settings(max_examples=60, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(path=paths, tail=st.text(st.characters(min_codepoint=48, max_codepoint=122), max_size=10),
           raw=bodies, extra=headers)
    def one(path: str, tail: str, raw: bytes, extra: dict[str, str]) -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            target = path + tail + ("/infer" if path.endswith("versions/") else "")
            conn.request("POST", target, body=raw, headers=extra)
            r = conn.getresponse()
            data = r.read()
        finally:
            conn.close()
        assert r.status < 500, (r.status, data, raw[:200], extra)

    one()
