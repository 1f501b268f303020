"""Failure policies of tool tasks: parsed from the manifest, applied with retries and jittered backoff."""

from __future__ import annotations

import enum
import logging
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from planc.runtime.engine.clock import Clock
from planc.runtime.tools.breaker import BreakerRegistry, BreakerState, CircuitBreaker
from planc.runtime.tools.failures import BreakerOpen, ToolError, ToolTimeout

from planc.enums import TextEnum

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


class PolicyError(ValueError):
    """A POLICY dict in the manifest is malformed."""


class OnFailure(TextEnum, noun="on_failure", error=PolicyError):
    """What the executor does when a task's attempts are exhausted."""

    FAIL = "fail"
    SKIP = "skip"
    USE = "use"


class Jitter(TextEnum, noun="jitter", error=PolicyError):
    """How a backoff delay is randomized (see `backoff_delay`)."""

    FULL = "full"
    DECORRELATED = "decorrelated"


DEFAULT_BACKOFF = (0.1, 2.0)
_POLICY_KEYS = ("retry", "backoff", "timeout", "breaker", "on_failure", "fallback")
_OPTIMIZER_KEYS = frozenset({"cost", "prob", "expect"})  # the compiler's business, not the runtime's


@dataclass(frozen=True, slots=True)
class Policy:
    """A task's failure policy. `retry` is the number of retries: `retry + 1` attempts in all."""

    retry: int = 0
    backoff: tuple[float, float] = DEFAULT_BACKOFF
    timeout: float | None = None
    breaker: tuple[int, float] | None = None
    on_failure: OnFailure = OnFailure.FAIL
    fallback: str | None = None
    jitter: Jitter = Jitter.FULL

    @property
    def attempts(self) -> int:
        return self.retry + 1

    @classmethod
    def from_manifest(cls, d: Mapping[str, Any] | None, *, task: str = "?") -> Policy:
        """Parse a manifest POLICY dict (None or {} is the default: one attempt, fail)."""
        if d is None:
            return cls()
        if not isinstance(d, Mapping):
            raise PolicyError(f"task '{task}': policy must be an object, found {d!r}")
        unknown = sorted(set(d) - set(_POLICY_KEYS) - _OPTIMIZER_KEYS)
        if unknown:
            raise PolicyError(
                f"task '{task}': unknown policy key(s) {', '.join(unknown)}; "
                f"expected: {', '.join(_POLICY_KEYS)}"
            )
        try:
            on_failure = OnFailure.parse(d.get("on_failure") or "fail")
        except PolicyError as e:
            raise PolicyError(f"task '{task}': {e}") from None
        fallback = d.get("fallback")
        if on_failure is OnFailure.USE and not (isinstance(fallback, str) and fallback):
            raise PolicyError(
                f"task '{task}': on_failure 'use' needs a fallback value name, found {fallback!r}"
            )
        if fallback is not None and not isinstance(fallback, str):
            raise PolicyError(f"task '{task}': fallback must be a value name, found {fallback!r}")
        return cls(
            retry=_int(d.get("retry", 0), "retry", task, low=0),
            backoff=_backoff(d.get("backoff"), task),
            timeout=_opt_seconds(d.get("timeout"), "timeout", task),
            breaker=_breaker(d.get("breaker"), task),
            on_failure=on_failure,
            fallback=fallback if on_failure is OnFailure.USE else None,
        )

    def delay(self, k: int, rng: random.Random, previous: float | None = None) -> float:
        """The delay before retry `k + 1` (k = 0 after the first failure); see `backoff_delay`."""
        return backoff_delay(k, self.backoff, rng, jitter=self.jitter, previous=previous)


def backoff_delay(
    k: int,
    bounds: tuple[float, float],
    rng: random.Random,
    *,
    jitter: Jitter = Jitter.FULL,
    previous: float | None = None,
) -> float:
    """Seconds to wait after failure number `k` (0-based), always within [low, high].

    FULL: uniform in [low, cap_k] with cap_k = min(high, low * 2**k) (AWS "full jitter",
    floored at `low` so the declared lower bound holds). DECORRELATED: min(high,
    uniform(low, 3 * previous)) with `previous` the last delay (`low` at first).
    """
    low, high = bounds
    if jitter is Jitter.DECORRELATED:
        prev = low if previous is None else previous
        return min(high, rng.uniform(low, max(low, 3.0 * prev)))
    cap = min(high, low * 2.0 ** min(k, 64))
    return rng.uniform(low, max(low, cap))


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


def _int(v: Any, key: str, task: str, *, low: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < low:
        raise PolicyError(f"task '{task}': policy '{key}' must be an integer >= {low}, found {v!r}")
    return v


def _seconds(v: Any, key: str, task: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0 or v == float("inf"):
        raise PolicyError(
            f"task '{task}': policy '{key}' must be a finite number of seconds >= 0, found {v!r}"
        )
    return float(v)


def _opt_seconds(v: Any, key: str, task: str) -> float | None:
    if v is None:
        return None
    s = _seconds(v, key, task)
    if s == 0:
        raise PolicyError(f"task '{task}': policy '{key}' must be > 0 seconds, found {v!r}")
    return s


def _backoff(v: Any, task: str) -> tuple[float, float]:
    if v is None:
        return DEFAULT_BACKOFF
    if not isinstance(v, (list, tuple)) or len(v) != 2:
        raise PolicyError(f"task '{task}': policy 'backoff' must be [low, high] in seconds, found {v!r}")
    low, high = _seconds(v[0], "backoff", task), _seconds(v[1], "backoff", task)
    if low > high:
        raise PolicyError(f"task '{task}': policy 'backoff' low {low:g}s is above high {high:g}s")
    return low, high


def _breaker(v: Any, task: str) -> tuple[int, float] | None:
    if v is None:
        return None
    if not isinstance(v, (list, tuple)) or len(v) != 2:
        raise PolicyError(f"task '{task}': policy 'breaker' must be [failures, window seconds], found {v!r}")
    window = _seconds(v[1], "breaker", task)
    if window == 0:
        raise PolicyError(f"task '{task}': policy 'breaker' window must be > 0 seconds, found {v!r}")
    return _int(v[0], "breaker", task, low=1), window
