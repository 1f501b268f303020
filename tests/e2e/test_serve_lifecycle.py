"""`planrt serve` stopping under load it cannot finish: SIGTERM's drain deadline with a half-sent body
and a long tool call open, and a `kill -9` that must not leave its python tool call running on.
The plan has no model (nothing for IREE to compile): one slow python tool."""

from __future__ import annotations

import json
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from serve_support import ServerProcess, post_json

SLOW = Path(__file__).parent / "plans" / "slowtool"
INFER = "/v2/models/slowtool/infer"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    from planc.compiler.bundle.build import BuildOptions, build_bundle

    out = tmp_path_factory.mktemp("slowtool") / "slowtool.planb"
    build_bundle(SLOW / "slowtool.plan", out, options=BuildOptions(progress=None))
    return out


def body(seconds: float) -> dict:
    return {"inputs": [{"name": "seconds", "shape": [], "datatype": "FP32", "data": [seconds]}]}


def start(bundle: Path, tmp: Path, *args: str) -> ServerProcess:
    return ServerProcess([bundle], tmp / "state", *args, env={"SLOWTOOL_LOG": str(tmp / "tool.log")})


def half_sent(url: str) -> socket.socket:
    host, port = url.split(":")
    s = socket.create_connection((host, int(port)))
    s.sendall(f"POST {INFER} HTTP/1.1\r\nHost: {url}\r\nContent-Length: 400\r\n\r\n{{\"in".encode())
    return s


def tool_pids(log: Path, event: str) -> list[int]:
    lines = log.read_text().splitlines() if log.exists() else []
    return [int(line.split()[1]) for line in lines if line.startswith(event)]


def alive(pid: int) -> bool:
    """Running (a zombie nobody reaped, in a container without an init, is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_for(cond, timeout: float, what: str) -> float:
    t0 = time.monotonic()
    while not cond():
        assert time.monotonic() - t0 < timeout, f"timed out waiting for {what}"
        time.sleep(0.05)
    return time.monotonic() - t0


def test_sigterm_with_only_a_half_sent_body_exits_0_at_once(bundle, tmp_path):
    server = start(bundle, tmp_path, "--body-timeout", "60", "--drain-timeout", "2")
    s = half_sent(server.url)
    try:
        time.sleep(0.2)
        t0 = time.monotonic()
        assert server.terminate(timeout=20) == 0
        assert time.monotonic() - t0 < 5  # the drain deadline, not the client, ends it
    finally:
        s.close()


def test_sigterm_past_the_drain_deadline_exits_1_and_stops_the_tool(bundle, tmp_path):
    server = start(bundle, tmp_path, "--drain-timeout", "2")
    log = tmp_path / "tool.log"
    with ThreadPoolExecutor(1) as pool:
        fut = pool.submit(post_json, server.url, INFER, body(30), {"Idempotency-Key": "long-1"})
        wait_for(lambda: tool_pids(log, "start"), 20, "the tool to start")
        t0 = time.monotonic()
        assert server.terminate(timeout=20) == 1
        assert time.monotonic() - t0 < 6
        status, doc, _ = fut.result()
        assert status == 503 and "drain deadline" in doc["error"]
    worker = tool_pids(log, "start")[0]
    wait_for(lambda: not alive(worker), 3, "the tool worker to end with its server")
    assert "drain deadline" in server.log.read_text()


def test_kill_9_leaves_no_tool_call_running(bundle, tmp_path):
    server = start(bundle, tmp_path)
    log = tmp_path / "tool.log"
    with ThreadPoolExecutor(1) as pool:
        fut = pool.submit(post_json, server.url, INFER, body(2), {"Idempotency-Key": "k9"})
        wait_for(lambda: tool_pids(log, "start"), 20, "the tool to start")
        t0 = time.monotonic()
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(10)
        with pytest.raises(OSError):
            fut.result()
    first = tool_pids(log, "start")[0]
    wait_for(lambda: not alive(first), 1.5, "the orphaned tool worker to end")
    time.sleep(max(0.0, 2.5 - (time.monotonic() - t0)))
    assert not tool_pids(log, "done")  # the killed server's call never finished on its own
    server.stop()
    again = start(bundle, tmp_path)  # the same state directory: the key's run is finished, alone
    try:
        status, doc, _ = post_json(again.url, INFER, body(2), {"Idempotency-Key": "k9"})
        assert status == 200, doc
        assert json.loads(doc["outputs"][0]["data"][0]) == {"waited": 2.0}
    finally:
        again.stop()
    starts, done = tool_pids(log, "start"), tool_pids(log, "done")
    assert len(starts) == 2 and done == [starts[1]]


def test_kill_9_ends_an_exec_tool_in_flight(tmp_path):
    from planc.compiler.bundle.build import BuildOptions, build_bundle

    bundle = tmp_path / "exectool.planb"
    build_bundle(SLOW / "exec.plan", bundle, options=BuildOptions(progress=None))
    server = start(bundle, tmp_path)
    log = tmp_path / "tool.log"
    try:
        with ThreadPoolExecutor(1) as pool:
            fut = pool.submit(post_json, server.url, "/v2/models/exectool/infer", body(30))
            wait_for(lambda: tool_pids(log, "start"), 20, "the tool to start")
            server.proc.send_signal(signal.SIGKILL)
            server.proc.wait(10)
            with pytest.raises(OSError):
                fut.result()
        tool = tool_pids(log, "start")[0]
        wait_for(lambda: not alive(tool), 3, "the exec tool to end with its server")
    finally:
        server.stop()


def test_a_client_that_leaves_stops_its_exec_tool(tmp_path):
    from planc.compiler.bundle.build import BuildOptions, build_bundle

    bundle = tmp_path / "exectool.planb"
    build_bundle(SLOW / "exec.plan", bundle, options=BuildOptions(progress=None))
    server = start(bundle, tmp_path)
    log = tmp_path / "tool.log"
    try:
        raw = json.dumps(body(30)).encode()
        host, port = server.url.split(":")
        s = socket.create_connection((host, int(port)))
        s.sendall(f"POST /v2/models/exectool/infer HTTP/1.1\r\nHost: x\r\nContent-Length: {len(raw)}\r\n\r\n"
                  .encode() + raw)
        wait_for(lambda: tool_pids(log, "start"), 20, "the tool to start")
        s.close()
        wait_for(lambda: not alive(tool_pids(log, "start")[0]), 3, "the exec tool to be killed")
        wait_for(lambda: b"planrt_running 0.0" in get_metrics(server.url), 3, "the run to give its worker back")
    finally:
        server.stop()


def get_metrics(url: str) -> bytes:
    from serve_support import get

    return get(url, "/metrics")[1]


def test_keep_runs_deletes_old_keyed_runs(bundle, tmp_path):
    server = start(bundle, tmp_path, "--keep-runs", "1")
    runs = tmp_path / "state" / "models" / "slowtool" / "runs"
    try:
        first = post_json(server.url, INFER, body(0.0), {"Idempotency-Key": "old-1"})
        assert first[0] == 200 and len(list(runs.glob("key-*"))) == 1
        assert post_json(server.url, INFER, body(0.0), {"Idempotency-Key": "old-1"})[1]["parameters"]["replayed"]
        wait_for(lambda: not list(runs.glob("key-*")), 5, "the old keyed run to be deleted")
        again = post_json(server.url, INFER, body(0.0), {"Idempotency-Key": "old-1"})
        assert again[0] == 200 and "replayed" not in again[1]["parameters"]  # a fresh run
    finally:
        server.stop()


def test_a_client_that_leaves_stops_its_tool_call_and_its_run(tmp_path):
    from planc.compiler.bundle.build import BuildOptions, build_bundle

    chain = tmp_path / "chain.planb"
    build_bundle(SLOW / "chain.plan", chain, options=BuildOptions(progress=None))
    server = start(chain, tmp_path)
    log = tmp_path / "tool.log"
    try:
        raw = json.dumps(body(2.0)).encode()
        host, port = server.url.split(":")
        s = socket.create_connection((host, int(port)))
        s.sendall(f"POST /v2/models/chain/infer HTTP/1.1\r\nHost: x\r\nContent-Length: {len(raw)}\r\n\r\n".encode()
                  + raw)
        wait_for(lambda: tool_pids(log, "start"), 20, "the first call to start")
        first = tool_pids(log, "start")[0]
        s.close()
        wait_for(lambda: not alive(first), 1.5, "the first call's worker to be killed")
        time.sleep(2.5)  # the first call would have finished, and the second started, by now
        assert len(tool_pids(log, "start")) == 1 and not tool_pids(log, "done")
        status, doc, _ = post_json(server.url, "/v2/models/chain/infer", body(0.0))  # and it serves on
        assert status == 200 and doc["parameters"]["status"] == "completed"
    finally:
        server.stop()
