"""Exec tools that must not outlive the runtime that started them: a small watcher process holds
their process groups and kills them when the runtime is gone, `kill -9` included (python tool
workers watch their parent themselves, worker.py)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading

__all__ = ["Reaper"]

# The watcher: reads "+PGID" / "-PGID" lines; at EOF (the runtime exited or died: the write end of
# its stdin closed with it) it kills every group still registered.
_WATCH = """
import os, signal, sys
groups = set()
for line in sys.stdin.buffer:
    line = line.strip()
    if line[:1] == b"+":
        groups.add(int(line[1:]))
    elif line[:1] == b"-":
        groups.discard(int(line[1:]))
for g in groups:
    try:
        os.killpg(g, signal.SIGKILL)
    except OSError:
        pass
"""


class Reaper:
    """Registers running exec tools' process groups with a watcher started on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._fd = -1

    def add(self, pgid: int) -> None:
        self._send(f"+{pgid}\n")

    def remove(self, pgid: int) -> None:
        self._send(f"-{pgid}\n")

    def _send(self, line: str) -> None:
        with self._lock:
            if self._proc is None:
                self._start()
            with contextlib.suppress(OSError):  # the watcher is gone: nothing to protect with it
                os.write(self._fd, line.encode())

    def _start(self) -> None:
        r, w = os.pipe()  # both ends non-inheritable: no tool holds the write end open
        try:
            # Its own session: a Ctrl-C to the runtime's terminal does not stop it before it reaps.
            self._proc = subprocess.Popen([sys.executable, "-P", "-c", _WATCH], stdin=r, close_fds=True,
                                          start_new_session=True)
        finally:
            os.close(r)
        self._fd = w

    def close(self) -> None:
        """Let the watcher go (it kills what is still registered: nothing, after an orderly close)."""
        with self._lock:
            proc, self._proc = self._proc, None
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
