"""`planrt serve` with every shipped example, driven by Triton's own client: outputs equal JAX."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
from e2e_support import EXAMPLES, PLANS, example_inputs, mlir_references
from serve_support import ServerProcess, get, post_json

tritonclient_http = pytest.importorskip("tritonclient.http", reason="the dev extra installs tritonclient[http]")
pytestmark = pytest.mark.iree

DATATYPE = {"f32": "FP32", "i32": "INT32"}


@pytest.fixture(scope="module")
def server(bundles, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve-examples")
    env = {"PLANC_NOTIFY_LOG": str(tmp / "notify.log"), "PLANC_OUTBOX": str(tmp / "outbox.jsonl")}
    proc = ServerProcess([bundles[p].path for _, p in PLANS], tmp / "state", "--workers", "8", env=env)
    approver = _Approver(proc.url, [p for _, p in PLANS])
    approver.start()
    try:
        yield proc
    finally:
        approver.stop.set()
        proc.stop()


class _Approver(threading.Thread):
    """A reviewer: approves every pending gate over HTTP (the triage example asks for review)."""

    def __init__(self, url: str, models: list[str]):
        super().__init__(daemon=True)
        self.url, self.models, self.stop = url, models, threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.05):
            for m in self.models:
                try:
                    status, body, _ = get(self.url, f"/v2/models/{m}/gates")
                except OSError:
                    continue
                for g in json.loads(body).get("gates", []) if status == 200 else []:
                    post_json(self.url, f"/v2/models/{m}/gates/{g['id']}", {"decision": "approve", "by": "test"})


def _reference(built, plan_file, inputs):
    """The same plan run with JAX for every compute task (and gates approved)."""
    from planc.compiler.codegen.reference import jax_compute
    from planc.runtime.bundle.loader import load_bundle
    from planc.runtime.engine.runner import RunConfig, Runner

    runner = Runner(load_bundle(built.path), RunConfig(compute=jax_compute(built.graph, mlir_references(plan_file))))
    try:
        return [runner.run(i)[0] for i in inputs]
    finally:
        runner.close()


def _infer(client, model, inputs, binary=True):
    http = tritonclient_http
    tensors = []
    for name, a in inputs.items():
        t = http.InferInput(name, list(a.shape), DATATYPE[{"float32": "f32", "int32": "i32"}[a.dtype.name]])
        t.set_data_from_numpy(a, binary_data=binary)
        tensors.append(t)
    return client.infer(model, tensors)


def _check(response, expected, model):
    for name, value in expected.outputs.items():
        got = response.as_numpy(name)
        if value is None:
            assert got is None, f"{model}.{name} was skipped, the server sent it"
            assert name in response.get_response()["parameters"]["skipped"]
        elif isinstance(value, np.ndarray):
            assert got is not None and got.dtype == value.dtype and got.shape == value.shape, name
            np.testing.assert_allclose(got, value, rtol=1e-5, atol=1e-6, err_msg=f"{model}.{name}")
        else:
            assert got is not None and got.shape == (1,), name  # JSON: one BYTES element
            sent = json.loads(got[0])
            if name != "reply":  # the reply carries the run's own idempotency key
                assert sent == value, name


def test_health_and_metadata(server, bundles):
    client = tritonclient_http.InferenceServerClient(server.url)
    assert client.is_server_live() and client.is_server_ready()
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    for _, plan in PLANS:
        assert client.is_model_ready(plan)
        md = client.get_model_metadata(plan)
        assert md["name"] == plan and len(md["versions"]) == 1
        from planc.runtime.bundle.loader import load_bundle

        manifest = load_bundle(bundles[plan].path).manifest
        assert md["versions"][0] == load_bundle(bundles[plan].path).sha256
        assert [(i["name"], i["datatype"], i["shape"]) for i in md["inputs"]] == [
            (i["name"], DATATYPE[i["dtype"]], i["shape"]) for i in manifest["inputs"]]
        assert [o["name"] for o in md["outputs"]] == [o["name"] for o in manifest["outputs"]]
    defects = {o["name"]: o for o in client.get_model_metadata("defects")["outputs"]}
    assert defects["label"]["datatype"] == "FP32" and defects["label"]["shape"] == [1, 4]
    assert defects["alert"]["datatype"] == "BYTES"  # a tool's JSON result
    assert not client.is_model_ready("nope")


@pytest.mark.parametrize("file,plan", PLANS, ids=[p for _, p in PLANS])
def test_every_example_matches_jax(server, bundles, file, plan):
    from planc.runtime.bundle.loader import load_bundle

    manifest = load_bundle(bundles[plan].path).manifest
    inputs = [example_inputs(manifest, seed) for seed in (0, 1)]
    expected = _reference(bundles[plan], EXAMPLES / file, inputs)
    client = tritonclient_http.InferenceServerClient(server.url, network_timeout=120)
    for i, exp, binary in zip(inputs, expected, (True, False)):  # binary-data extension, then JSON
        response = _infer(client, plan, i, binary)
        assert response.get_response()["model_version"] == load_bundle(bundles[plan].path).sha256
        assert response.get_response()["parameters"]["status"] == exp.status.value
        _check(response, exp, plan)


def test_32_concurrent_requests_are_all_correct(server, bundles):
    from planc.runtime.bundle.loader import load_bundle

    manifest = load_bundle(bundles["sensors"].path).manifest
    inputs = [example_inputs(manifest, seed) for seed in range(32)]
    expected = _reference(bundles["sensors"], EXAMPLES / "sensors/sensors.plan", inputs)
    client = tritonclient_http.InferenceServerClient(server.url, concurrency=32, network_timeout=120)
    http = tritonclient_http
    pending = []
    for i in inputs:
        tensors = []
        for name, a in i.items():
            t = http.InferInput(name, list(a.shape), "FP32")
            t.set_data_from_numpy(a)
            tensors.append(t)
        pending.append(client.async_infer("sensors", tensors))
    for p, exp in zip(pending, expected):
        _check(p.get_result(), exp, "sensors")
    client.close()


def test_malformed_requests_get_400_naming_the_input(server):
    ok = {"name": "vibration", "shape": [8, 128], "datatype": "FP32", "data": [0.5] * 1024}
    path = "/v2/models/vib_screen/infer"
    cases = [
        ({"inputs": [{**ok, "shape": [8, 12]}]}, "input 'vibration' has shape [8, 12]"),
        ({"inputs": [{**ok, "datatype": "BYTES"}]}, "input 'vibration' has datatype 'BYTES'"),
        ({"inputs": [{**ok, "datatype": "FP64", "data": [1e300] * 1024}]}, "1e+300 overflows f32"),
        ({"inputs": []}, "missing input 'vibration'"),
        ({"inputs": [ok, {**ok, "name": "extra"}]}, "unknown input 'extra'"),
        ({"inputs": [{**ok, "data": [0.5] * 10}]}, "input 'vibration' has 10 data elements"),
        ({"inputs": [{**ok, "data": ["x"] * 1024}]}, "input 'vibration': data is not FP32"),
        ({"nothing": 1}, "needs 'inputs'"),
    ]
    for doc, message in cases:
        status, body, _ = post_json(server.url, path, doc)
        assert status == 400 and message in body["error"], (doc.get("inputs", doc), body)
    from serve_support import request

    status, body, _ = request(server.url, path, b'{"inputs": [', {"Content-Type": "application/json"})
    assert status == 400 and b"not valid JSON" in body
    status, body, _ = request(server.url, path, b'{"inputs": []}', {"Inference-Header-Content-Length": "99"})
    assert status == 400 and b"Inference-Header-Content-Length 99" in body
    status, body, _ = post_json(server.url, "/v2/models/nope/infer", {"inputs": []})
    assert status == 404 and "unknown model 'nope'" in body["error"]
    status, body, _ = post_json(server.url, path, {"inputs": [ok]})  # and it keeps serving
    assert status == 200 and body["outputs"][0]["name"] == "level"


def test_metrics(server, bundles):
    from planc.runtime.bundle.loader import load_bundle

    client = tritonclient_http.InferenceServerClient(server.url, network_timeout=120)
    triage = example_inputs(load_bundle(bundles["triage"].path).manifest)
    triage["urgency"] = np.asarray(2.5, np.float32)  # the review gate asks; the approver decides it
    assert _infer(client, "triage", triage).get_response()["parameters"]["status"] == "completed"
    status, _, _ = post_json(server.url, "/v2/models/sensors/infer", {"inputs": [
        {"name": "audio", "shape": [8, 256], "datatype": "FP32", "data": [0.1] * 2048},
        {"name": "vibration", "shape": [8, 128], "datatype": "FP32", "data": [0.1] * 1024},
        {"name": "temperature", "shape": [8, 16], "datatype": "FP32", "data": [0.1] * 128}]})
    assert status == 200
    time.sleep(0.1)
    status, body, headers = get(server.url, "/metrics")
    text = body.decode()
    assert status == 200 and headers["content-type"].startswith("text/plain")
    for needle in ('planrt_requests_total{code="200",model="sensors"}', 'planrt_request_seconds_bucket{le=',
                   'planrt_group_seconds_count{group=', "planrt_queue_depth ", "planrt_running ",
                   'planrt_runs_total{model="sensors",status="completed"}',
                   # the triage example's tools (breaker declared) and its review gate, run earlier
                   'planrt_breaker_state{model="triage",tool="lookup"} 0.0',
                   'planrt_tool_attempts_total{model="triage",outcome="ok",tool="lookup"}',
                   'planrt_gate_wait_seconds_count{gate="review",model="triage",outcome="decided"}'):
        assert needle in text, needle
