"""The server's worker slots: --workers runs compute at once, a run waiting at a gate gives its slot
back, at most --max-waiting runs wait at gates, and a request whose client went away is cancelled."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from planc.runtime.api.gates import Answer, GateRequest, GateSource, NoAnswer

__all__ = ["Ticket", "Workers"]


class Ticket:
    """One accepted request: `cancel()` when its client is gone (a queued run is skipped, a gate it
    waits at is rejected, a tool call in progress is stopped; a compute task finishes)."""

    def __init__(self, keyed: bool) -> None:
        self.keyed = keyed
        self.cancelled = threading.Event()

    def cancel(self) -> None:
        self.cancelled.set()


class Workers:
    """`workers` slots that runs hold while they compute, and the count of runs waiting at gates."""

    def __init__(self, workers: int, max_waiting: int) -> None:
        self.workers, self.max_waiting = workers, max_waiting
        self._slots = threading.Semaphore(workers)
        self._lock = threading.Lock()
        self.running = 0
        self.waiting = 0

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one worker slot (blocks while all --workers are busy)."""
        self._slots.acquire()
        with self._lock:
            self.running += 1
        try:
            yield
        finally:
            with self._lock:
                self.running -= 1
            self._slots.release()

    def counts(self) -> tuple[int, int]:
        """(running, waiting at gates)."""
        with self._lock:
            return self.running, self.waiting

    def gates(self, inner: GateSource) -> GateSource:
        """`inner`, waiting without a worker slot, and refusing to wait past --max-waiting runs."""
        return _Released(self, inner)


class _Released:
    """A gate source whose waits give the run's worker slot back and take one again after."""

    def __init__(self, workers: Workers, inner: GateSource) -> None:
        self.w, self.inner = workers, inner
        self.name = inner.name

    def wait(self, request: GateRequest, deadline: float | None, clock: Any, audit: Any) -> Answer | NoAnswer:
        w = self.w
        with w._lock:
            full = w.waiting >= w.max_waiting
            if not full:
                w.waiting += 1
                w.running -= 1
        if full:
            return NoAnswer(f"{w.max_waiting} runs already wait at gates (--max-waiting)")
        w._slots.release()
        try:
            return self.inner.wait(request, deadline, clock, audit)
        finally:
            w._slots.acquire()
            with w._lock:
                w.waiting -= 1
                w.running += 1
