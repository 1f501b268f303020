"""The failure policy a task carries in the manifest: a frozen record, parsed and checked once."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from planc.enums import TextEnum

__all__ = ["DEFAULT_BACKOFF", "Jitter", "OnFailure", "Policy", "PolicyError", "backoff_delay"]

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
