"""The inference server's state and work: models, workers, backpressure, gates, metrics (no HTTP here)."""

from __future__ import annotations

import concurrent.futures as cf
import logging
import secrets
import threading
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from planc.runtime.api.errors import InputError, JournalError
from planc.runtime.api.gates import GateBoard
from planc.runtime.api.plan import IdempotencyConflict, Plan
from planc.runtime.api.runs import AuditLog, RunStatus, load_bundle
from planc.runtime.api.trust import Trust
from planc.runtime.serve.bodies import body_limit
from planc.runtime.serve.metrics import Metrics
from planc.runtime.serve.protocol import BadRequest, encode_response, parse_request
from planc.runtime.serve.repository import Repository, Served
from planc.runtime.serve.workers import Ticket, Workers

if TYPE_CHECKING:
    from planc.runtime.serve.auth import Tokens

__all__ = ["Busy", "InferenceServer", "Reply", "ServeOptions"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServeOptions:
    """How to serve: address, how many requests run at once and wait, limits, where state goes."""

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 4
    max_queue: int = 64
    max_body: int = 64 << 20
    state_dir: Path = Path("planrt-serve")
    model_control: str = "none"  # "explicit": POST /v2/repository/models/NAME/load|unload are allowed
    tool_env: dict[str, str] | None = field(default=None)
    trust: Trust | None = None  # keys every bundle, at start and on hot swap, must be signed by
    body_timeout: float = 30.0  # seconds to receive a whole request body; then 408
    drain_timeout: float = 30.0  # seconds SIGTERM waits for in-flight requests before it exits anyway
    max_waiting: int = 64  # runs that may wait at review gates (without a worker); beyond, the default
    tokens: Tokens | None = None  # None: no authentication (loopback, or --insecure)
    repository_dir: Path | None = None  # where --model-control explicit may load bundles from
    keep_runs: float | None = None  # seconds a keyed run's journal is kept (None: forever)


class Busy(Exception):
    """The server has --workers requests running and --max-queue waiting: 503 at once."""


@dataclass
class Reply:
    """An HTTP answer: status, body, content type and extra headers."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


class InferenceServer:
    """Serves bundles as models: loads them, runs requests on `workers` threads with at most
    `max_queue` waiting, decides gates from HTTP, counts everything in Prometheus metrics."""

    def __init__(self, bundles: list[Path], options: ServeOptions) -> None:
        self.options = options
        options.state_dir.mkdir(parents=True, exist_ok=True)
        self.audit = AuditLog(options.state_dir / "audit.jsonl")
        self.board = GateBoard(audit=self.audit, observer=self._gate_waited)
        self.metrics = Metrics(self._breakers, self._queue, lambda: len(self.board.pending()))
        self.repo = Repository(self._load)
        # A run waiting at a gate keeps its thread but not its worker slot: threads for both.
        self.workers = Workers(options.workers, options.max_waiting)
        self.pool = cf.ThreadPoolExecutor(max_workers=options.workers + options.max_waiting,
                                          thread_name_prefix="planrt-serve")
        self._lock = threading.Lock()
        self.accepted = 0  # requests admitted (their body in) and not yet answered
        self.draining = False
        self._stop = threading.Event()
        try:
            for b in bundles:
                self.repo.add(Path(b))
        except BaseException:
            self.close()
            raise
        if options.keep_runs is not None:
            threading.Thread(target=self._prune, args=(options.keep_runs,), name="planrt-prune", daemon=True).start()

    def _prune(self, keep: float) -> None:
        """Delete keyed runs older than --keep-runs, now and every so often (any client can mint keys)."""
        every = min(max(keep / 4, 0.2), 300.0)
        while True:
            for name in self.repo.names():
                try:
                    n = self.repo.get(name).plan.prune_runs(keep)
                except Exception as e:  # noqa: BLE001 (a model swapped or closed meanwhile: next round)
                    log.debug("model '%s': pruning keyed runs: %s", name, e)
                    continue
                if n:
                    log.info("model '%s': deleted %d keyed run(s) older than %gs", name, n, keep)
            if self._stop.wait(every):
                return

    # --------------------------------------------------------------- models
    def _load(self, path: Path) -> Plan:
        bundle = load_bundle(path, trust=self.options.trust)
        if self.options.trust is None:
            log.warning("bundle %s: signature not checked (no --trust)", path)
        name = str(bundle.records.plan)
        return Plan(bundle, gates=self.board.source(name), state_dir=self.options.state_dir / "models" / name,
                    concurrency=self.options.workers + self.options.max_waiting, tool_env=self.options.tool_env,
                    on_tool_attempt=lambda task, tool, n, err: self.metrics.tool_attempt(name, tool, n, err))

    def _breakers(self) -> dict[str, Any]:
        out = {}
        for name in self.repo.names():
            try:
                out[name] = self.repo.get(name).plan.breaker_states()
            except KeyError:
                continue
        return out

    def _queue(self) -> tuple[int, int]:
        running, waiting = self.workers.counts()
        with self._lock:
            return max(0, self.accepted - running - waiting), running

    def _gate_waited(self, model: str, gate: str, seconds: float, outcome: str) -> None:
        self.metrics.gate_wait.labels(model, gate, outcome).observe(seconds)

    # ------------------------------------------------------------- requests
    def admit(self, model: str) -> None:
        """Count a request in, or raise Busy when --workers run and --max-queue wait already."""
        limit = self.options.workers + self.options.max_queue
        _, waiting = self.workers.counts()  # runs at gates hold no worker and count on --max-waiting
        with self._lock:
            if self.accepted - waiting >= limit:
                busy = True
            else:
                busy = False
                self.accepted += 1
        if busy:
            self.metrics.rejected.labels(model).inc()
            self.metrics.requests.labels(model, "503").inc()
            raise Busy(f"server busy: {self.options.workers} requests running and {self.options.max_queue} "
                       "waiting (--workers, --max-queue); retry later")

    def leave(self) -> None:
        with self._lock:
            self.accepted -= 1

    def infer(self, served: Served, body: bytes, header_length: str | None, encoding: str | None,
              key: str | None, ticket: Ticket | None = None) -> Reply:
        """One inference request, on a pool thread: wait for a worker slot, parse, run, encode.
        Never raises. A request cancelled before it got its slot is not run (499)."""
        ticket = ticket or Ticket(key is not None)
        model = served.name
        gone = error_reply(499, "the client went away before the request ran")
        if ticket.cancelled.is_set():  # left while queued: no worker taken at all
            reply = gone
        else:
            with self.workers.slot():
                cancelled = ticket.cancelled.is_set()
                reply = gone if cancelled else self._timed(served, body, header_length, encoding, key, ticket)
        self.metrics.requests.labels(model, str(reply.status)).inc()
        return reply

    def _timed(self, served: Served, body: bytes, header_length: str | None, encoding: str | None,
               key: str | None, ticket: Ticket) -> Reply:
        model = served.name
        timer = self.metrics.latency.labels(model).time()
        timer.__enter__()
        try:
            return self._infer(served, body, header_length, encoding, key, ticket)
        except Exception:
            log.exception("model '%s': internal error", model)
            return error_reply(500, f"internal error in planrt serve (a bug; the server log has the trace) "
                                    f"while serving model '{model}'")
        finally:
            timer.__exit__(None, None, None)

    def _infer(self, served: Served, body: bytes, header_length: str | None, encoding: str | None,
               key: str | None, ticket: Ticket) -> Reply:
        plan = served.plan
        try:
            body = decompress(body, encoding, body_limit(plan.inputs, self.options.max_body))
            hl = None
            if header_length is not None:
                try:
                    hl = int(header_length)
                except ValueError:
                    raise BadRequest(f"Inference-Header-Content-Length {header_length!r} is not a number") from None
            req = parse_request(body, hl, plan.inputs, [s.name for s in plan.outputs])
            rid = "r-" + secrets.token_hex(8)  # the run's id as tools and the gate list see it
            # An unkeyed run whose client left has nobody to answer: its gate is rejected. A keyed
            # run goes on (a retry with the key picks its result up), so it is not cancelled.
            cancel = None if ticket.keyed else ticket.cancelled
            gates = self.workers.gates(self.board.source(served.name, req.id or rid, cancel=cancel))
            result = plan.run(req.inputs, idempotency_key=key, request_id=rid, gates=gates, cancel=cancel)
        except (BadRequest, InputError) as e:
            return error_reply(400, str(e))
        except IdempotencyConflict as e:  # the key was used with other inputs (or bundle version)
            return error_reply(422, str(e))
        except JournalError as e:  # the key's run is held by another process
            return error_reply(409, str(e))
        self.metrics.observe_run(served.name, result, set(plan.records.modules))
        if result.status is RunStatus.FAILED and ticket.cancelled.is_set():
            return error_reply(499, f"model '{served.name}': the client went away; the run stopped: {result.error}")
        if result.status is RunStatus.FAILED:
            return error_reply(500, f"model '{served.name}': the run failed: {result.error}")
        data, head = encode_response(served.name, req, result, plan.outputs)
        headers = {"Idempotency-Replayed": "true"} if result.replayed else {}
        if head is None:
            return Reply(200, data, headers=headers)
        headers["Inference-Header-Content-Length"] = str(head)
        return Reply(200, data, "application/octet-stream", headers)

    def close(self, wait: bool = True) -> None:
        """Stop the workers (waiting for them, or, past the drain deadline, not) and the models."""
        self._stop.set()
        self.pool.shutdown(wait=wait, cancel_futures=not wait)
        if wait:
            self.repo.close()


def error_reply(status: int, message: str) -> Reply:
    import json

    return Reply(status, json.dumps({"error": message}).encode())


def decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """The body as sent, gzip and deflate undone (never past `limit` bytes)."""
    enc = (encoding or "identity").strip().lower()
    if enc == "identity":
        return body
    if enc not in ("gzip", "deflate"):
        raise BadRequest(f"unsupported Content-Encoding {encoding!r}; expected gzip, deflate or identity")
    d = zlib.decompressobj(wbits=31 if enc == "gzip" else 15)
    try:
        out = d.decompress(body, limit + 1)
    except zlib.error as e:
        raise BadRequest(f"the body is not valid {enc} data: {e}") from None
    if len(out) > limit:
        raise BadRequest(f"the request body exceeds {limit} bytes once decompressed (--max-body)")
    return out
