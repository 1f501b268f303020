"""Prometheus metrics of a server (prometheus-client, imported when the server is built)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from planc.runtime.api.results import Result
from planc.runtime.api.runs import BreakerState

__all__ = ["Metrics"]

_LATENCY = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_GATE = (0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0, 1800.0, 3600.0)
_BREAKER = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


class Metrics:
    """The server's metrics in their own registry: requests, latency per model and per group, queue
    depth, tool attempts and retries, breaker states, gate waits."""

    def __init__(self, breakers: Callable[[], Mapping[str, Mapping[str, BreakerState]]],
                 queue: Callable[[], tuple[int, int]], pending_gates: Callable[[], int]) -> None:
        import prometheus_client as p

        self._p = p
        self.registry = r = p.CollectorRegistry()
        self.requests = p.Counter("planrt_requests", "Inference requests by model and HTTP status",
                                  ["model", "code"], registry=r)
        self.latency = p.Histogram("planrt_request_seconds", "Inference request latency (server side)",
                                   ["model"], buckets=_LATENCY, registry=r)
        self.group = p.Histogram("planrt_group_seconds", "Time of each compiled group (and other task) per run",
                                 ["model", "group"], buckets=_LATENCY, registry=r)
        self.runs = p.Counter("planrt_runs", "Runs by model and status (completed, rejected, failed)",
                              ["model", "status"], registry=r)
        self.tool_attempts = p.Counter("planrt_tool_attempts", "Tool attempts by outcome (ok, error)",
                                       ["model", "tool", "outcome"], registry=r)
        self.tool_retries = p.Counter("planrt_tool_retries", "Tool attempts after the first",
                                      ["model", "tool"], registry=r)
        self.gate_wait = p.Histogram("planrt_gate_wait_seconds", "How long review gates waited for a decision",
                                     ["model", "gate", "outcome"], buckets=_GATE, registry=r)
        self.rejected = p.Counter("planrt_rejected_busy", "Requests refused with 503 (queue full)",
                                  ["model"], registry=r)
        self.replays = p.Counter("planrt_idempotent_replays", "Requests answered from an earlier run with "
                                 "the same Idempotency-Key", ["model"], registry=r)
        r.register(_Live(p, breakers, queue, pending_gates))

    def observe_run(self, model: str, result: Result, groups: set[str]) -> None:
        self.runs.labels(model, result.status.value).inc()
        if result.replayed:
            self.replays.labels(model).inc()
            return
        for task, seconds in result.task_seconds.items():
            if task in groups:
                self.group.labels(model, task).observe(seconds)

    def tool_attempt(self, model: str, tool: str, attempt: int, error: str | None) -> None:
        self.tool_attempts.labels(model, tool, "ok" if error is None else "error").inc()
        if attempt > 1:
            self.tool_retries.labels(model, tool).inc()

    def render(self) -> tuple[bytes, str]:
        return self._p.generate_latest(self.registry), self._p.CONTENT_TYPE_LATEST


class _Live:
    """Gauges read at scrape time: queue depth, in-flight requests, breaker states, pending gates."""

    def __init__(self, p: Any, breakers: Callable[[], Mapping[str, Mapping[str, BreakerState]]],
                 queue: Callable[[], tuple[int, int]], pending_gates: Callable[[], int]) -> None:
        self._p, self._breakers, self._queue, self._pending = p, breakers, queue, pending_gates

    def collect(self) -> Any:
        from prometheus_client.core import GaugeMetricFamily

        waiting, running = self._queue()
        yield GaugeMetricFamily("planrt_queue_depth", "Requests accepted and waiting for a worker", value=waiting)
        yield GaugeMetricFamily("planrt_running", "Requests running on a worker", value=running)
        yield GaugeMetricFamily("planrt_gates_pending", "Review gates waiting for a decision",
                                value=self._pending())
        g = GaugeMetricFamily("planrt_breaker_state", "Tool circuit breakers: 0 closed, 1 half-open, 2 open",
                              labels=["model", "tool"])
        for model, states in self._breakers().items():
            for tool, state in states.items():
                g.add_metric([model, tool], _BREAKER[state])
        yield g
