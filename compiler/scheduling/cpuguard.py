"""A CPU-second safety on a CP-SAT solve: stop the search once this process has used a given
number of CPU seconds during it.

The solver's own limits are deterministic time (reproducible, but its units cost a varying
number of CPU seconds from model to model) and wall time (which a loaded host stretches, so
it would cut the search short, and differently, on a busy machine). Neither caps what a
compile costs in CPU. This guard does: a daemon thread polls ``time.process_time`` (all of
this process's threads; the solver runs one worker) and calls ``stop_search`` when the
allowance is spent. Where the deterministic limit binds first the result is reproducible;
where the guard stops the search, ``Guard.fired`` says so and the caller logs it.
"""

from __future__ import annotations

import threading
import time
from typing import Self

__all__ = ["Guard"]

POLL_S = 0.05


class Guard:
    """``with Guard(solver, seconds): solver.solve(model)``; None seconds: no limit."""

    def __init__(self, solver, seconds: float | None) -> None:
        self.solver, self.seconds, self.fired = solver, seconds, False
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def _watch(self, limit: float) -> None:
        while not self._done.wait(POLL_S):
            if time.process_time() >= limit:
                self.fired = True
                self.solver.stop_search()
                return

    def __enter__(self) -> Self:
        if self.seconds is not None:
            limit = time.process_time() + max(self.seconds, 0.0)
            self._thread = threading.Thread(target=self._watch, args=(limit,), daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()
