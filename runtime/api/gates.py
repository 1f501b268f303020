"""Review gates decided by the application: pending decisions to list and decide (the server's /gates)."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from planc.runtime.gates.keeper import (
    Answer,
    AuditLog,
    Decision,
    GateError,
    GateRequest,
    GateSource,
    NoAnswer,
    convert_edit,
)
from planc.runtime.journal.clock import Clock
from planc.runtime.journal.valuestore import value_sha256

# Answer, GateRequest, GateSource and NoAnswer are handed on for applications (and the server) that
# write or wrap a gate source.
__all__ = ["CANCELLED", "Answer", "GateBoard", "GateRequest", "GateSource", "NoAnswer", "NoReviewer", "Pending",
           "UnknownGate"]

CANCELLED = "cancelled (the client went away)"  # who rejected a gate whose run was cancelled


class UnknownGate(KeyError):
    """No pending decision has this id (never asked, already decided, or timed out)."""


class NoReviewer:
    """A gate source without a reviewer: every gate takes its own default at once."""

    name = "no-reviewer"

    def wait(self, request: GateRequest, deadline: float | None, clock: Clock, audit: AuditLog) -> NoAnswer:
        return NoAnswer("no reviewer configured")


@dataclass
class Pending:
    """A gate waiting for a decision: what it shows a reviewer, and when its default applies."""

    id: str
    gate: str
    iteration: tuple[int, ...]
    value: Any
    default: str
    timeout: float | None
    deadline: float | None  # clock.now() seconds
    model: str
    request: str | None
    answer: Answer | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def describe(self, now: float) -> dict[str, Any]:
        """JSON for a reviewer: the value under review, its sha256, the default and the time left."""
        value = self.value.tolist() if isinstance(self.value, (np.ndarray, np.generic)) else self.value
        left = None if self.deadline is None else max(0.0, self.deadline - now)
        return {"id": self.id, "gate": self.gate, "iteration": list(self.iteration), "model": self.model,
                "request": self.request, "value": value, "value_sha256": value_sha256(self.value),
                "default": self.default, "timeout_s": self.timeout, "seconds_left": left}


class GateBoard:
    """Gates of many runs, waiting for decisions that come from elsewhere (an HTTP call, a UI).

    `source(model, request)` gives the gate source of one run; `pending()` lists what waits;
    `decide(id, ...)` answers. A gate with no answer by its timeout takes its default. Every answer
    is also appended to `audit` (the GateKeeper logs the decision itself in the run's audit log)."""

    def __init__(self, *, audit: AuditLog | None = None,
                 observer: Callable[[str, str, float, str], None] | None = None) -> None:
        """`observer(model, gate, seconds waited, "decided"|"timeout")` is called as each wait ends."""
        self.audit, self.observer = audit, observer
        self._lock = threading.Lock()
        self._pending: dict[str, Pending] = {}

    def source(self, model: str, request: str | None = None, *,
               cancel: threading.Event | None = None) -> _BoardSource:
        """The gate source of one run; when `cancel` is set, its waiting gate is rejected at once."""
        return _BoardSource(self, model, request, cancel)

    def pending(self, model: str | None = None) -> list[Pending]:
        with self._lock:
            return [p for p in self._pending.values() if model is None or p.model == model]

    def get(self, gate_id: str) -> Pending:
        with self._lock:
            p = self._pending.get(gate_id)
        if p is None:
            raise UnknownGate(gate_id)
        return p

    def decide(self, gate_id: str, decision: str, by: str, value: Any = None, *, has_value: bool = False) -> Pending:
        """Answer a pending gate: `decision` approve|reject, `by` who; an edited `value` (approve only)
        must fit the original's dtype and shape. Raises UnknownGate or GateError naming the problem."""
        d = Decision.parse(decision)
        if not isinstance(by, str) or not by.strip():
            raise GateError("'by' must name who decided (a non-empty string)")
        if has_value and d is Decision.REJECT:
            raise GateError("an edited 'value' only goes with 'approve'")
        with self._lock:
            p = self._pending.get(gate_id)
            if p is None or p.answer is not None:
                raise UnknownGate(gate_id)
            try:
                edited = convert_edit(value, p.value) if has_value else None
            except ValueError as e:
                raise GateError(f"gate '{p.gate}': {e}") from None
            p.answer = Answer(d, by.strip(), edited)
        if self.audit is not None:
            self.audit.append("gate_answered", id=gate_id, gate=p.gate, model=p.model, request=p.request,
                              iteration=list(p.iteration), decision=d.value, by=by.strip(), edited=has_value)
        p.done.set()
        return p

    def _wait(self, request: GateRequest, deadline: float | None, clock: Clock, model: str,
              req_id: str | None, cancel: threading.Event | None = None) -> Answer | NoAnswer:
        p = Pending(secrets.token_hex(8), request.gate, tuple(request.iteration), request.value,
                    request.default.value, request.timeout, deadline, model, req_id)
        with self._lock:
            self._pending[p.id] = p
        start = clock.now()
        try:
            while not p.done.is_set():
                left = None if deadline is None else deadline - clock.now()
                if left is not None and left <= 0:
                    break
                if cancel is not None and cancel.is_set():
                    self._cancel(p)
                    break
                step = 1.0 if cancel is None else 0.1
                p.done.wait(timeout=step if left is None else min(left, step))
        finally:
            with self._lock:
                self._pending.pop(p.id, None)
                answer = p.answer
                if answer is None:
                    p.answer = Answer(Decision(p.default), "timeout")  # late decide() calls find it gone
        if self.observer is not None:
            self.observer(model, p.gate, clock.now() - start, "timeout" if answer is None else "decided")
        return answer if answer is not None else NoAnswer("timeout")

    def _cancel(self, p: Pending) -> None:
        """Reject `p` because its run was cancelled (the client went away): nobody is left to want it."""
        with self._lock:
            if p.answer is not None:
                return
            p.answer = Answer(Decision.REJECT, CANCELLED)
        if self.audit is not None:
            self.audit.append("gate_cancelled", id=p.id, gate=p.gate, model=p.model, request=p.request,
                              iteration=list(p.iteration), decision="reject", by=CANCELLED)


class _BoardSource:
    """The gate source of one run on a GateBoard."""

    name = "http"

    def __init__(self, board: GateBoard, model: str, request: str | None,
                 cancel: threading.Event | None = None) -> None:
        self.board, self.model, self.request, self.cancel = board, model, request, cancel

    def wait(self, request: GateRequest, deadline: float | None, clock: Clock,
             audit: AuditLog) -> Answer | NoAnswer:
        return self.board._wait(request, deadline, clock, self.model, self.request, self.cancel)
