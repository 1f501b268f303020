"""`planrt serve` in operation: backpressure, idempotency across a restart, gates over HTTP, SIGTERM
drain and hot swap under load, on a small plan with a slow, logged side effect (plans/ops)."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from serve_support import ServerProcess, get, post_json, request

pytestmark = pytest.mark.iree

OPS = Path(__file__).parent / "plans" / "ops"
INFER = "/v2/models/ops/infer"


@pytest.fixture(scope="module")
def ops(tmp_path_factory) -> dict[str, Path]:
    """The ops plan as bundle v1, and v2 (another SCALE in its model: other outputs, another sha256)."""
    from planc.compiler.bundle.build import BuildOptions, build_bundle

    tmp = tmp_path_factory.mktemp("ops")
    os.environ.setdefault("PLANC_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    v2_src = tmp / "v2-src"
    shutil.copytree(OPS, v2_src)
    models = v2_src / "models.py"
    models.write_text(models.read_text().replace("SCALE = 1.5", "SCALE = 2.5"))
    out = {}
    for name, src in (("v1", OPS), ("v2", v2_src)):
        out[name] = tmp / name / "ops.planb"
        out[name].parent.mkdir()
        build_bundle(src / "ops.plan", out[name], options=BuildOptions(progress=None))
    return out


def body(x=(0.1, 0.2, 0.3, 0.4), review=0.0, sleep=0.0) -> dict:
    return {"inputs": [{"name": "x", "shape": [4], "datatype": "FP32", "data": list(x)},
                       {"name": "review", "shape": [], "datatype": "FP32", "data": [review]},
                       {"name": "sleep", "shape": [], "datatype": "FP32", "data": [sleep]}]}


def outputs(doc: dict) -> dict:
    """Output name -> data; a JSON output (BYTES) decoded."""
    return {o["name"]: json.loads(o["data"][0]) if o["datatype"] == "BYTES" else o["data"] for o in doc["outputs"]}


def calls(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def start(bundles, tmp_path, *args, state="state"):
    return ServerProcess(bundles, tmp_path / state, *args, env={"OPS_LOG": str(tmp_path / "calls.jsonl")})


def test_503_beyond_the_queue_at_once(ops, tmp_path):
    server = start([ops["v1"]], tmp_path, "--workers", "1", "--max-queue", "1")
    try:
        with ThreadPoolExecutor(2) as pool:
            slow = [pool.submit(post_json, server.url, INFER, body(sleep=1.5)) for _ in range(2)]
            deadline = time.monotonic() + 10
            while b"planrt_queue_depth 1.0" not in get(server.url, "/metrics")[1]:
                assert time.monotonic() < deadline, "the second request never queued"
                time.sleep(0.02)
            t0 = time.monotonic()
            status, doc, headers = post_json(server.url, INFER, body())
            assert status == 503 and time.monotonic() - t0 < 1.0, doc
            assert "--max-queue" in doc["error"] and headers["retry-after"] == "1"
            assert [f.result()[0] for f in slow] == [200, 200]
        assert post_json(server.url, INFER, body())[0] == 200  # room again
        assert b'planrt_rejected_busy_total{model="ops"} 1.0' in get(server.url, "/metrics")[1]
    finally:
        server.stop()


def test_idempotency_key_one_side_effect_also_across_a_restart(ops, tmp_path):
    log = tmp_path / "calls.jsonl"
    server = start([ops["v1"]], tmp_path)
    try:
        first = post_json(server.url, INFER, body(), {"Idempotency-Key": "order-17"})
        again = post_json(server.url, INFER, body(), {"Idempotency-Key": "order-17"})
        other = post_json(server.url, INFER, body(), {"Idempotency-Key": "order-18"})
        assert first[0] == again[0] == other[0] == 200
        assert outputs(first[1]) == outputs(again[1])
        assert again[1]["parameters"]["replayed"] is True and again[2]["idempotency-replayed"] == "true"
        conflict = post_json(server.url, INFER, body(x=(1, 2, 3, 4)), {"Idempotency-Key": "order-17"})
        assert conflict[0] == 422 and "input 'x'" in conflict[1]["error"]
        assert len(calls(log)) == 2  # order-17 once, order-18 once
    finally:
        assert server.terminate() == 0
    server = start([ops["v1"]], tmp_path)  # the same state directory
    try:
        after = post_json(server.url, INFER, body(), {"Idempotency-Key": "order-17"})
        assert after[0] == 200 and outputs(after[1]) == outputs(first[1])
        assert after[1]["parameters"]["replayed"] is True
        assert len(calls(log)) == 2  # no tool call repeated after the restart
    finally:
        server.stop()


def _pending(url: str, timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        gates = json.loads(get(url, "/v2/models/ops/gates")[1])["gates"]
        if gates:
            return gates[0]
        assert time.monotonic() < deadline, "no gate became pending"
        time.sleep(0.02)


def test_gates_over_http_decided_and_timed_out(ops, tmp_path):
    server = start([ops["v1"]], tmp_path)
    try:
        with ThreadPoolExecutor(1) as pool:
            fut = pool.submit(post_json, server.url, INFER, body(review=1.0))
            gate = _pending(server.url)
            assert gate["gate"] == "check" and gate["default"] == "reject" and len(gate["value"]) == 4
            bad = post_json(server.url, f"/v2/models/ops/gates/{gate['id']}", {"decision": "maybe", "by": "ann"})
            assert bad[0] == 400 and "expected one of: approve, reject" in bad[1]["error"]
            edited = [0.5, 0.5, 0.5, 0.5]
            ok = post_json(server.url, f"/v2/models/ops/gates/{gate['id']}",
                           {"decision": "approve", "by": "ann", "value": edited})
            assert ok[0] == 200 and ok[1]["decision"] == "approve"
            status, doc, _ = fut.result()
            assert status == 200 and doc["parameters"]["status"] == "completed"
            assert outputs(doc)["effect"]["sum"] == 2.0  # the tool got the edited value
        again = post_json(server.url, f"/v2/models/ops/gates/{gate['id']}", {"decision": "approve", "by": "ann"})
        assert again[0] == 404
        t0 = time.monotonic()
        status, doc, _ = post_json(server.url, INFER, body(review=1.0))  # nobody decides: 2s, default reject
        assert status == 200 and time.monotonic() - t0 >= 1.9
        assert doc["parameters"] == {"status": "rejected", "skipped": ["effect"], "rejected_by": "check"}
        assert "effect" not in outputs(doc)
    finally:
        server.stop()
    audit = [json.loads(line) for p in (tmp_path / "state").rglob("audit.jsonl") for line in p.read_text().splitlines()]
    decided = [(a["decision"], a["by"]) for a in audit if a["event"] == "gate_decided"]
    assert sorted(decided) == [("approve", "ann"), ("reject", "default (timeout)")]
    assert any(a["event"] == "gate_answered" and a["by"] == "ann" for a in audit)


def test_sigterm_drains_in_flight_requests_and_exits_0(ops, tmp_path):
    server = start([ops["v1"]], tmp_path, "--workers", "4")
    with ThreadPoolExecutor(3) as pool:
        slow = [pool.submit(post_json, server.url, INFER, body(sleep=1.5)) for _ in range(3)]
        deadline = time.monotonic() + 10
        while len(calls(tmp_path / "calls.jsonl")) < 3:  # all three are running their tool
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert server.terminate() == 0
        assert [f.result()[0] for f in slow] == [200, 200, 200]
    with pytest.raises(OSError):
        get(server.url, "/v2/health/live")


def test_hot_swap_under_load_fails_no_request(ops, tmp_path):
    from planc.runtime.bundle.loader import load_bundle

    v1, v2 = (load_bundle(ops[v]).sha256 for v in ("v1", "v2"))
    server = start([ops["v1"]], tmp_path, "--workers", "4", "--model-control", "explicit",
                   "--repository-dir", str(ops["v2"].parent.parent))
    results: list[tuple[int, str, float]] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            status, doc, _ = post_json(server.url, INFER, body(sleep=0.05))
            results.append((status, doc.get("model_version", ""), outputs(doc)["total"][0] if status == 200 else 0))

    try:
        threads = [threading.Thread(target=load) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        status, doc, _ = post_json(server.url, "/v2/repository/models/ops/load", {"parameters": {"path": str(ops["v2"])}})
        assert status == 200 and doc["version"] == v2
        time.sleep(1.0)
        stop.set()
        for t in threads:
            t.join()
        wrong = post_json(server.url, "/v2/repository/models/ops/load", {"parameters": {"path": "v1/no.planb"}})
        assert wrong[0] == 400 and "no.planb" in wrong[1]["error"]
        assert post_json(server.url, INFER, body())[1]["model_version"] == v2  # still serving v2
    finally:
        server.stop()
    assert results and all(s == 200 for s, _, _ in results), [r for r in results if r[0] != 200][:3]
    versions = [v for _, v, _ in results]
    assert versions[0] == v1 and versions[-1] == v2 and set(versions) == {v1, v2}
    totals = {v: {t for s, vv, t in results if vv == v} for v in (v1, v2)}
    assert len(totals[v1]) == 1 and len(totals[v2]) == 1 and totals[v1] != totals[v2]
    x = np.array([0.1, 0.2, 0.3, 0.4], np.float32)
    assert abs(next(iter(totals[v1])) - float(np.tanh(x * 1.5 + 0.25).sum())) < 1e-5


def test_repository_load_is_off_by_default(ops, tmp_path):
    server = start([ops["v1"]], tmp_path)
    try:
        status, doc, _ = post_json(server.url, "/v2/repository/models/ops/load", {"parameters": {"path": str(ops["v2"])}})
        assert status == 403 and "--model-control explicit" in doc["error"]
        assert request(server.url, INFER, b"x" * 100, {"Content-Length": "100"})[0] == 400
    finally:
        server.stop()


def test_oversized_body_is_refused(ops, tmp_path):
    server = start([ops["v1"]], tmp_path, "--max-body", "4096")
    try:
        status, doc, _ = post_json(server.url, INFER, {**body(), "pad": "x" * 5000})
        assert status == 400 and "limit of 4096" in doc["error"]
        assert post_json(server.url, INFER, body())[0] == 200
    finally:
        server.stop()
