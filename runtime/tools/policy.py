"""Failure policies of tool tasks applied: retries, jittered backoff and circuit breakers around a call."""

from __future__ import annotations

import enum
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from planc.runtime.contract.policy import Jitter, OnFailure, Policy, PolicyError, backoff_delay
from planc.runtime.journal.clock import Clock
from planc.runtime.tools.breaker import BreakerRegistry, BreakerState, CircuitBreaker
from planc.runtime.tools.failures import BreakerOpen, ToolError, ToolTimeout

__all__ = [
    "Attempt",
    "AttemptReport",
    "BreakerOpen",
    "BreakerRegistry",
    "BreakerState",
    "CircuitBreaker",
    "Jitter",
    "OnFailure",
    "Outcome",
    "OutcomeKind",
    "Policy",
    "PolicyError",
    "ToolError",
    "ToolTimeout",
    "backoff_delay",
    "call_with_policy",
]

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one attempt is told: its 1-based number and the per-attempt timeout."""

    number: int
    timeout: float | None


@dataclass(frozen=True, slots=True)
class AttemptReport:
    """One finished attempt: when it started, how long it took, its error, the delay before the next."""

    number: int
    start: float
    duration: float
    error: ToolError | None
    next_delay: float | None


class OutcomeKind(enum.Enum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"
    BREAKER_OPEN = "breaker-open"


@dataclass(frozen=True, slots=True)
class Outcome(Generic[T]):
    """The result of `call_with_policy`. `error` is the last ToolError (FAILED, SKIPPED after a
    failure) or the BreakerOpen (BREAKER_OPEN); `attempts` counts attempts that ran."""

    kind: OutcomeKind
    value: T | None = None
    error: ToolError | None = None
    attempts: int = 0
    delays: tuple[float, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.kind is OutcomeKind.OK

    def unwrap(self) -> T:
        """The value, or raise the error (ToolError) when the outcome is not OK."""
        if self.kind is OutcomeKind.OK:
            return self.value  # type: ignore[return-value]
        raise self.error if self.error is not None else ToolError("?", f"call {self.kind.value}")


def call_with_policy(
    fn: Callable[[Attempt], T],
    policy: Policy,
    *,
    clock: Clock,
    rng: random.Random,
    breaker: CircuitBreaker | None = None,
    on_attempt: Callable[[AttemptReport], None] | None = None,
    cancel: threading.Event | None = None,
) -> Outcome[T]:
    """Run `fn` under `policy`: up to `policy.attempts` attempts, jittered backoff between them.

    `fn` enforces the attempt's timeout itself (a tool runner kills its process) and signals
    failure by raising ToolError (ToolTimeout included; a permanent one ends the call at once);
    any other exception propagates. Each
    attempt first asks `breaker`; an open breaker ends the call as BREAKER_OPEN without running
    `fn`. A set `cancel` event ends it as SKIPPED before the next attempt. The caller applies
    `policy.on_failure` to a non-OK outcome.
    """
    delays: list[float] = []
    last: ToolError | None = None
    prev: float | None = None
    for n in range(1, policy.attempts + 1):
        if cancel is not None and cancel.is_set():
            return Outcome(OutcomeKind.SKIPPED, error=last, attempts=n - 1, delays=tuple(delays))
        if breaker is not None:
            try:
                breaker.allow()
            except BreakerOpen as e:
                return Outcome(OutcomeKind.BREAKER_OPEN, error=e, attempts=n - 1, delays=tuple(delays))
        start = clock.now()
        try:
            value = fn(Attempt(n, policy.timeout))
        except ToolError as e:
            if e.attempt is None:
                e.attempt = n
            last = e
            if e.permanent:  # retrying cannot help, and the tool itself did not fail
                if breaker is not None:
                    breaker.release()
                _report(on_attempt, AttemptReport(n, start, clock.now() - start, last, None))
                break
            if breaker is not None:
                breaker.record_failure()
        except BaseException:
            if breaker is not None:
                breaker.release()
            raise
        else:
            if breaker is not None:
                breaker.record_success()
            _report(on_attempt, AttemptReport(n, start, clock.now() - start, None, None))
            return Outcome(OutcomeKind.OK, value=value, attempts=n, delays=tuple(delays))
        delay = policy.delay(n - 1, rng, prev) if n < policy.attempts else None
        _report(on_attempt, AttemptReport(n, start, clock.now() - start, last, delay))
        if delay is None:
            break
        log.info("%s; retrying in %.3gs", last, delay)
        if breaker is not None and breaker.retry_after() > delay:
            return Outcome(
                OutcomeKind.BREAKER_OPEN, error=_open_error(breaker), attempts=n, delays=tuple(delays)
            )
        clock.sleep(delay)
        delays.append(delay)
        prev = delay
    return Outcome(OutcomeKind.FAILED, error=last, attempts=n, delays=tuple(delays))


def _open_error(b: CircuitBreaker) -> BreakerOpen:
    return BreakerOpen(b.tool, b.failures, b.window, b.retry_after())


def _report(cb: Callable[[AttemptReport], None] | None, r: AttemptReport) -> None:
    if cb is not None:
        cb(r)
