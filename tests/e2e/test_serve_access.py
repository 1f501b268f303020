"""`planrt serve` access control against the real server: bearer tokens with roles, gate decisions
recorded under the token's name, repository loads kept inside --repository-dir, and the CLI's
refusals (open non-loopback bind, bad ports, a port in use)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from serve_support import PLANRT, ServerProcess, free_port, get, post_json, request

pytestmark = pytest.mark.iree

OPS = Path(__file__).parent / "plans" / "ops"
INFER = "/v2/models/ops/infer"
TOKENS = {"app": "infer-token-0123456789", "ann": "review-token-0123456789", "ops": "admin-token-0123456789"}


def auth(who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[who]}"}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from planc.compiler.bundle.build import BuildOptions, build_bundle

    os.environ.setdefault("PLANC_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    tmp = tmp_path_factory.mktemp("access")
    repo = tmp / "repo"
    repo.mkdir()
    bundle = repo / "ops.planb"
    build_bundle(OPS / "ops.plan", bundle, options=BuildOptions(progress=None))
    (tmp / "secret.planb").write_text("not for you")
    tokens = tmp / "tokens"
    tokens.write_text("# name roles token\n" + "\n".join(
        f"{n} {r} {TOKENS[n]}" for n, r in (("app", "infer"), ("ann", "review"), ("ops", "admin"))) + "\n")
    proc = ServerProcess([bundle], tmp / "state", "--auth-file", str(tokens), "--model-control", "explicit",
                         "--repository-dir", str(repo), env={"OPS_LOG": str(tmp / "calls.jsonl")})
    proc.tmp = tmp
    try:
        yield proc
    finally:
        proc.stop()


def body(review=0.0) -> dict:
    return {"inputs": [{"name": "x", "shape": [4], "datatype": "FP32", "data": [0.1, 0.2, 0.3, 0.4]},
                       {"name": "review", "shape": [], "datatype": "FP32", "data": [review]},
                       {"name": "sleep", "shape": [], "datatype": "FP32", "data": [0.0]}]}


def test_routes_need_a_token_with_their_role(served):
    url = served.url
    assert get(url, "/v2/health/live")[0] == 200  # probes stay open
    status, _, headers = request(url, INFER, json.dumps(body()).encode())
    assert status == 401 and headers["www-authenticate"].startswith("Bearer")
    assert request(url, INFER, json.dumps(body()).encode(), {"Authorization": "Bearer wrong-token-xxxxxxxx"})[0] == 401
    assert post_json(url, INFER, body(), auth("app"))[0] == 200
    assert post_json(url, INFER, body(), auth("ops"))[0] == 200  # admin may do everything
    status, doc, _ = request(url, "/v2/models/ops/gates", headers=auth("app"))
    assert status == 403 and b"needs 'review'" in doc
    assert request(url, "/metrics")[0] == 401 and request(url, "/metrics", headers=auth("app"))[0] == 200
    status, doc, _ = post_json(url, "/v2/repository/models/ops/unload", {}, auth("ann"))
    assert status == 403 and "needs 'admin'" in doc["error"]


def test_a_decision_is_recorded_under_the_tokens_name(served):
    url = served.url
    with ThreadPoolExecutor(1) as pool:
        fut = pool.submit(post_json, url, INFER, body(review=1.0), auth("app"))
        deadline = time.monotonic() + 10
        while not (gates := json.loads(request(url, "/v2/models/ops/gates", headers=auth("ann"))[1])["gates"]):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        status, doc, _ = post_json(url, f"/v2/models/ops/gates/{gates[0]['id']}",
                                   {"decision": "approve", "by": "mallory"}, auth("ann"))
        assert status == 200 and doc["by"] == "ann"
        assert fut.result()[1]["parameters"]["status"] == "completed"
    audit = [json.loads(line) for line in (served.tmp / "state" / "audit.jsonl").read_text().splitlines()]
    assert [a["by"] for a in audit if a["event"] == "gate_answered"] == ["ann"]


def test_loads_stay_inside_the_repository_directory(served):
    url, tmp = served.url, served.tmp
    answers = []
    for path in (str(tmp / "secret.planb"), "../secret.planb", str(tmp / "missing.planb"), "/etc/passwd"):
        status, doc, _ = post_json(url, "/v2/repository/models/ops/load", {"parameters": {"path": path}}, auth("ops"))
        assert status == 403, doc
        answers.append(doc["error"].replace(path, "PATH"))
    assert len(set(answers)) == 1  # the same answer whether the file exists or not
    status, doc, _ = post_json(url, "/v2/repository/models/ops/load", {"parameters": {"path": "ops.planb"}},
                               auth("ops"))
    assert status == 200, doc
    audit = [json.loads(line) for line in (tmp / "state" / "audit.jsonl").read_text().splitlines()]
    assert [(a["model"], a["by"]) for a in audit if a["event"] == "model_loaded"] == [("ops", "ops")]


def planrt(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(PLANRT), *args], check=False, capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def test_the_cli_refuses_open_binds_and_bad_ports_clearly(tmp_path):
    nothing = str(tmp_path / "none.planb")  # refused before any bundle is read
    r = planrt("serve", nothing, "--host", "0.0.0.0")
    assert r.returncode == 1 and "without authentication" in r.stderr and "--insecure" in r.stderr
    r = planrt("serve", nothing, "--port", "99999")
    assert r.returncode == 2 and "expected a number from 0 to 65535" in r.stderr and "Traceback" not in r.stderr
    r = planrt("serve", nothing, "--max-body", "64MiB", "--auth-file", str(tmp_path / "nofile"))
    assert r.returncode == 1 and "nofile" in r.stderr and "Traceback" not in r.stderr
    (tmp_path / "bad").write_text("ann reviewer short\n")
    r = planrt("serve", nothing, "--auth-file", str(tmp_path / "bad"))
    assert r.returncode == 1 and f"{tmp_path / 'bad'}:1: unknown role(s) reviewer" in r.stderr
    r = planrt("serve", nothing, env={"PLANRT_SERVE_TOKENS": "ann review"})
    assert r.returncode == 1 and "$PLANRT_SERVE_TOKENS:1: expected 'NAME ROLE[,ROLE] TOKEN'" in r.stderr
    r = planrt("--version")
    assert r.returncode == 0 and r.stdout.startswith("planrt ")
    r = planrt("inspect", "--help")
    assert "NAME.planb or a bundle directory" in r.stdout and "print the same as JSON" in r.stdout


def test_a_port_in_use_is_said_before_anything_is_served(served, tmp_path):
    port = served.url.split(":")[1]
    bundle = served.tmp / "repo" / "ops.planb"
    r = planrt("serve", str(bundle), "--port", port, "--state-dir", str(tmp_path / "s"))
    assert r.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in r.stderr
    assert "serving model" not in r.stderr and "Traceback" not in r.stderr
    assert free_port() > 0
