"""Injected time: a `Clock` protocol, the real `SystemClock` and an exact `FakeClock` for tests."""

from __future__ import annotations

import threading
import time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "FakeClock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """Where the runtime reads and spends time.

    `now()` is monotonic seconds (for deadlines, backoff and durations), `wall()` is
    seconds since the epoch (for audit timestamps only), `sleep(s)` waits `s` seconds.
    """

    def now(self) -> float: ...

    def wall(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock: `time.monotonic`, `time.time`, `time.sleep`."""

    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class FakeClock:
    """A clock whose `sleep` advances time instantly; every sleep is recorded in `sleeps`.

    Thread-safe. `wall()` moves with `now()`, starting at `wall_start`.
    """

    def __init__(self, start: float = 0.0, *, wall_start: float = 1_700_000_000.0) -> None:
        self._lock = threading.Lock()
        self._now = float(start)
        self._offset = float(wall_start) - float(start)
        self.sleeps: list[float] = []

    def now(self) -> float:
        with self._lock:
            return self._now

    def wall(self) -> float:
        with self._lock:
            return self._now + self._offset

    def sleep(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"cannot sleep a negative time ({seconds}s)")
        with self._lock:
            self.sleeps.append(float(seconds))
            self._now += float(seconds)

    def advance(self, seconds: float) -> None:
        """Move time forward without recording a sleep (time spent elsewhere)."""
        if seconds < 0:
            raise ValueError(f"time cannot go backwards ({seconds}s)")
        with self._lock:
            self._now += float(seconds)
