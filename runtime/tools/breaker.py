"""Circuit breakers: one per tool and run, failing fast while a tool keeps failing."""

from __future__ import annotations

import enum
import logging
import threading

from planc.runtime.contract.policy import Policy
from planc.runtime.journal.clock import Clock
from planc.runtime.tools.failures import BreakerOpen

__all__ = ["BreakerRegistry", "BreakerState", "CircuitBreaker"]

log = logging.getLogger(__name__)


class BreakerState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class CircuitBreaker:
    """Per-tool breaker: opens after `failures` failures within `window` seconds (with no success
    in between), fails fast for `window` seconds, then lets one probe through (half-open); the
    probe's success closes it, its failure opens it again. Thread-safe; share one per tool.
    """

    def __init__(self, tool: str, failures: int, window: float, *, clock: Clock) -> None:
        if failures < 1 or window <= 0:
            raise ValueError(f"tool '{tool}': breaker needs failures >= 1 and window > 0")
        self.tool, self.failures, self.window, self._clock = tool, failures, window, clock
        self._lock = threading.Lock()
        self._recent: list[float] = []
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> BreakerState:
        with self._lock:
            return self._state(self._clock.now())

    def _state(self, now: float) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        return BreakerState.HALF_OPEN if now >= self._opened_at + self.window else BreakerState.OPEN

    def retry_after(self) -> float:
        """Seconds until a call may pass (0 when closed or ready for a probe)."""
        with self._lock:
            if self._opened_at is None:
                return 0.0
            return max(0.0, self._opened_at + self.window - self._clock.now())

    def allow(self) -> None:
        """Admit one call, or raise BreakerOpen. In half-open, only one probe at a time passes."""
        with self._lock:
            now = self._clock.now()
            state = self._state(now)
            if state is BreakerState.CLOSED:
                return
            if state is BreakerState.HALF_OPEN and not self._probing:
                self._probing = True
                log.info("tool '%s': circuit breaker half-open, letting one probe through", self.tool)
                return
            wait = max(0.0, self._opened_at + self.window - now) if self._opened_at is not None else 0.0
            raise BreakerOpen(self.tool, self.failures, self.window, wait)

    def record_success(self) -> None:
        with self._lock:
            if self._opened_at is not None:
                log.info("tool '%s': probe succeeded, circuit breaker closed", self.tool)
            self._recent.clear()
            self._opened_at, self._probing = None, False

    def record_failure(self) -> None:
        with self._lock:
            now = self._clock.now()
            if self._probing or self._opened_at is not None:
                self._opened_at, self._probing = now, False  # a failed probe re-opens it
                return
            self._recent = [t for t in self._recent if t > now - self.window] + [now]
            if len(self._recent) >= self.failures:
                self._opened_at = now
                log.warning(
                    "tool '%s': circuit breaker opened after %d failures within %gs",
                    self.tool,
                    len(self._recent),
                    self.window,
                )

    def release(self) -> None:
        """Forget an admitted call that ended without a verdict (an internal error, not the tool's)."""
        with self._lock:
            self._probing = False


class BreakerRegistry:
    """One CircuitBreaker per tool for a whole run, created on first use from a task's policy."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._breakers: dict[str, CircuitBreaker] = {}

    def states(self) -> dict[str, BreakerState]:
        """Each breaker's state, by tool."""
        with self._lock:
            breakers = dict(self._breakers)
        return {tool: b.state for tool, b in sorted(breakers.items())}

    def get(self, tool: str, policy: Policy) -> CircuitBreaker | None:
        """The tool's breaker, or None when `policy` declares none. The first declaration wins."""
        if policy.breaker is None:
            return None
        n, window = policy.breaker
        with self._lock:
            b = self._breakers.get(tool)
            if b is None:
                b = self._breakers[tool] = CircuitBreaker(tool, n, window, clock=self._clock)
            elif (b.failures, b.window) != (n, window):
                log.warning(
                    "tool '%s': breaker %d per %gs differs from the shared one (%d per %gs); using "
                    "the shared one",
                    tool,
                    n,
                    window,
                    b.failures,
                    b.window,
                )
            return b
