"""The HTTP face of the server: the Open Inference Protocol's routes, gates, repository and /metrics."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from planc.runtime.api.errors import GateError
from planc.runtime.api.gates import UnknownGate
from planc.runtime.serve.access import Outside, guard, inside
from planc.runtime.serve.bodies import BodyTimeout, ClientGone, body_limit, read_body, wait_or_disconnect
from planc.runtime.serve.protocol import BadRequest, tensor_metadata
from planc.runtime.serve.repository import ModelNotFound, Served
from planc.runtime.serve.server import Busy, InferenceServer, Reply, error_reply
from planc.runtime.serve.workers import Ticket

__all__ = ["build_app"]

SERVER_NAME = "planrt"
EXTENSIONS = ["binary_tensor_data", "model_repository", "planc_gates", "planc_idempotency"]


def build_app(server: InferenceServer) -> Any:
    """A Starlette app serving `server` (starlette is imported here, not at module import)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    def respond(reply: Reply) -> Response:
        return Response(reply.body, reply.status, headers=reply.headers, media_type=reply.content_type)

    def ok(doc: Any, status: int = 200) -> Response:
        return Response(json.dumps(doc).encode(), status, media_type="application/json")

    def fail(status: int, message: str) -> Response:
        return respond(error_reply(status, message))

    def who(request: Request) -> str:
        """The token holder's name for the audit log (without tokens: the client's address)."""
        if server.options.tokens is not None:
            return str(request.state.identity.name)
        return f"unauthenticated {request.client.host if request.client else 'client'}"

    def model_of(request: Request) -> Served:
        served = server.repo.get(request.path_params["name"])
        version = request.path_params.get("version")
        if version is not None and version != served.plan.sha256:
            raise ModelNotFound(f"{served.name} version {version}")
        return served

    async def live(request: Request) -> Response:
        return ok({"live": True})

    async def ready(request: Request) -> Response:
        up = not server.draining and bool(server.repo.names())
        return ok({"ready": up}, 200 if up else 503)

    async def metadata(request: Request) -> Response:
        from planc import __version__ as version

        return ok({"name": SERVER_NAME, "version": version, "extensions": EXTENSIONS})

    async def model_metadata(request: Request) -> Response:
        plan = model_of(request).plan
        return ok({"name": plan.name, "versions": [plan.sha256], "platform": "planc_bundle",
                   "inputs": [tensor_metadata(s) for s in plan.inputs],
                   "outputs": [tensor_metadata(s) for s in plan.outputs]})

    async def model_ready(request: Request) -> Response:
        model_of(request)
        return ok({"name": request.path_params["name"], "ready": not server.draining},
                  200 if not server.draining else 503)

    async def model_config(request: Request) -> Response:
        plan = model_of(request).plan

        def cfg(s: Any) -> dict[str, Any]:
            t = tensor_metadata(s)
            return {"name": t["name"], "data_type": "TYPE_" + ("STRING" if t["datatype"] == "BYTES" else t["datatype"]),
                    "dims": t["shape"]}

        return ok({"name": plan.name, "platform": "planc_bundle", "max_batch_size": 0,
                   "input": [cfg(s) for s in plan.inputs], "output": [cfg(s) for s in plan.outputs],
                   "parameters": {"objective": plan.records.objective, "variants": plan.variants}})

    async def infer(request: Request) -> Response:
        name = request.path_params["name"]
        if server.draining:
            return fail(503, "the server is shutting down; retry on another replica")
        plan = server.repo.get(name).plan  # an unknown model: 404 before any metric has its name
        try:
            body = await read_body(request, body_limit(plan.inputs, server.options.max_body),
                                   server.options.body_timeout)
        except BodyTimeout as e:
            return fail(408, str(e))
        except ClientGone:
            return fail(400, "the client closed the connection before its body was in")
        except BadRequest as e:
            server.metrics.requests.labels(name, "400").inc()
            return fail(400, str(e))
        try:
            server.admit(name)  # a worker or queue place only once the body is in
        except Busy as e:
            return respond(Reply(503, json.dumps({"error": str(e)}).encode(), headers={"Retry-After": "1"}))
        try:
            with server.repo.use(name) as served:
                version = request.path_params.get("version")
                if version is not None and version != served.plan.sha256:
                    raise ModelNotFound(f"{name} version {version}")
                key = request.headers.get("idempotency-key")
                ticket = Ticket(key is not None)
                work = asyncio.get_running_loop().run_in_executor(
                    server.pool, server.infer, served, body, request.headers.get("inference-header-content-length"),
                    request.headers.get("content-encoding"), key, ticket)
                try:
                    reply = await wait_or_disconnect(request, work, ticket.cancel)
                except asyncio.CancelledError:  # the drain deadline passed: say so rather than 500
                    return fail(503, "the server stopped (its drain deadline passed) before this request "
                                     "finished; retry (a keyed request picks its run up where it stopped)")
            return respond(reply)
        finally:
            server.leave()

    async def gates(request: Request) -> Response:
        served = model_of(request)
        now = time.monotonic()
        return ok({"gates": [p.describe(now) for p in server.board.pending(served.name)]})

    async def decide(request: Request) -> Response:
        served = model_of(request)
        gate_id = request.path_params["gate"]
        try:
            doc = json.loads(await read_body(request, 1 << 20, server.options.body_timeout))
            if not isinstance(doc, dict):
                raise BadRequest('expected {"decision": "approve"|"reject", "by": "who", "value": optional}')
            unknown = sorted(set(doc) - {"decision", "by", "value"})
            if unknown:
                raise BadRequest(f"unknown key(s) {', '.join(unknown)}; expected decision, by, value")
            if server.board.get(gate_id).model != served.name:
                raise UnknownGate(gate_id)
            who = request.state.identity.name if server.options.tokens is not None else doc.get("by")
            p = server.board.decide(gate_id, str(doc.get("decision")), who, doc.get("value"),
                                    has_value="value" in doc)
        except UnknownGate:
            return fail(404, f"model '{served.name}' has no pending gate '{gate_id}' (decided, timed out, or "
                             "never asked); GET .../gates lists the pending ones")
        except (GateError, BadRequest) as e:
            return fail(400, str(e))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            return fail(400, f"the decision is not valid JSON: {e}")
        except (BodyTimeout, ClientGone) as e:
            return fail(408, str(e) or "the client closed the connection before its body was in")
        assert p.answer is not None
        return ok({"id": p.id, "gate": p.gate, "decision": p.answer.decision.value, "by": p.answer.by})

    async def repo_index(request: Request) -> Response:
        return ok([{"name": n, "version": server.repo.get(n).plan.sha256, "state": "READY"}
                   for n in server.repo.names()])

    async def repo_load(request: Request) -> Response:
        name = request.path_params["name"]
        if server.options.model_control != "explicit":
            return fail(403, "loading models over HTTP is off; start planrt serve with --model-control explicit")
        try:
            raw = await read_body(request, 1 << 20, server.options.body_timeout)
            doc = json.loads(raw) if raw.strip() else {}
            params = doc.get("parameters", doc) if isinstance(doc, dict) else None
            if not isinstance(params, dict):
                raise BadRequest('expected {"parameters": {"path": "BUNDLE.planb"}}')
            path = params.get("path")
            if path is None:
                path = str(server.repo.get(name).path)  # reload the same file (Triton's load)
            elif not isinstance(path, str):
                raise BadRequest("'path' must be a string: the bundle file or directory")
            else:
                path = str(inside(server.options.repository_dir, path))
        except Outside as e:
            return fail(403, str(e))
        except (BodyTimeout, ClientGone) as e:
            return fail(408, str(e) or "the client closed the connection before its body was in")
        except ModelNotFound:
            return fail(400, f"model '{name}' is not served yet: name its bundle with {{\"parameters\": "
                             "{\"path\": ...}}")
        except (BadRequest, json.JSONDecodeError, UnicodeDecodeError) as e:
            return fail(400, str(e))
        try:
            if name in server.repo.names():
                served = await asyncio.to_thread(server.repo.swap, name, Path(path))
            else:
                served = await asyncio.to_thread(server.repo.add, Path(path))
                if served.name != name:
                    server.repo.remove(served.name)
                    raise ValueError(f"bundle {path} holds plan '{served.name}', not '{name}'")
        except Exception as e:  # noqa: BLE001 (BundleError, NoVariantError, a wrong plan: said, not raised)
            return fail(400, f"cannot load model '{name}' from {path}: {e}")
        server.audit.append("model_loaded", model=name, path=path, version=served.plan.sha256, by=who(request))
        return ok({"name": name, "version": served.plan.sha256})

    async def repo_unload(request: Request) -> Response:
        name = request.path_params["name"]
        if server.options.model_control != "explicit":
            return fail(403, "unloading models over HTTP is off; start planrt serve with --model-control explicit")
        server.repo.remove(name)
        server.audit.append("model_unloaded", model=name, by=who(request))
        return ok({"name": name})

    async def metrics(request: Request) -> Response:
        data, ctype = server.metrics.render()
        return Response(data, 200, media_type=ctype)

    async def not_found(request: Request, exc: Exception) -> Response:
        return fail(404, f"unknown model '{exc.args[0] if exc.args else ''}'; served: "
                         f"{', '.join(server.repo.names()) or 'none'}")

    m = "/v2/models/{name}"
    v = "/v2/models/{name}/versions/{version}"
    tokens = server.options.tokens
    # (path, handler, methods, role): None is open (probes); "any" is any valid token.
    table = [
        ("/v2/health/live", live, None, None), ("/v2/health/ready", ready, None, None),
        ("/v2", metadata, None, "any"),
        (m, model_metadata, None, "any"), (v, model_metadata, None, "any"),
        (m + "/ready", model_ready, None, "any"), (v + "/ready", model_ready, None, "any"),
        (m + "/config", model_config, None, "any"), (v + "/config", model_config, None, "any"),
        (m + "/infer", infer, ["POST"], "infer"), (v + "/infer", infer, ["POST"], "infer"),
        (m + "/gates", gates, None, "review"), (m + "/gates/{gate}", decide, ["POST"], "review"),
        ("/v2/repository/index", repo_index, ["POST", "GET"], "any"),
        ("/v2/repository/models/{name}/load", repo_load, ["POST"], "admin"),
        ("/v2/repository/models/{name}/unload", repo_unload, ["POST"], "admin"),
        ("/metrics", metrics, None, "any"),
    ]
    routes = [Route(path, guard(handler, role, tokens, fail), methods=methods) for path, handler, methods, role in table]
    return Starlette(routes=routes, exception_handlers={ModelNotFound: not_found})

