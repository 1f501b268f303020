"""Tool processes: own process groups, size-limited pipes, whole-group kills, python tool workers."""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from planc.runtime.tools.failures import ToolError, ToolTimeout

__all__ = [
    "CANCELLED",
    "Exchange",
    "PythonWorker",
    "describe_exit",
    "exchange",
    "kill_group",
    "reap_group",
    "spawn",
]

_CHUNK = 1 << 16
_WORKER = Path(__file__).with_name("worker.py")
_TICK = 0.05  # how often a wait re-checks whether the leader has exited (and whether it was cancelled)
CANCELLED = "cancelled: the run was cancelled (its client went away)"


@dataclass(frozen=True, slots=True)
class Exchange:
    """What one exchange with a process produced. `stderr` keeps only the last bytes."""

    stdout: bytes
    stderr: bytes
    timed_out: bool
    oversize: bool
    eof: bool
    cancelled: bool = False


def spawn(
    argv: Sequence[str],
    *,
    cwd: str | os.PathLike[str] | None,
    env: Mapping[str, str] | None,
    stderr: int | IO[bytes] = subprocess.PIPE,
) -> subprocess.Popen[bytes]:
    """Start `argv` (never through a shell) as the leader of a new session and process group."""
    return subprocess.Popen(
        list(argv),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr,
        cwd=cwd,
        env=dict(env) if env is not None else None,
        start_new_session=True,
        close_fds=True,
    )


def exchange(
    proc: subprocess.Popen[bytes],
    data: bytes,
    *,
    deadline: float | None,
    max_output: int,
    tail: int,
    until_newline: bool = False,
    close_stdin: bool = True,
    cancel: threading.Event | None = None,
) -> Exchange:
    """Write `data` to the process's stdin while reading its stdout (and stderr when piped).

    Stops at EOF of every pipe (or, with `until_newline`, at the first newline on stdout), at
    `deadline` (time.monotonic seconds), when stdout exceeds `max_output` bytes, or shortly
    after the leader exits while something else still holds its pipes open, or once `cancel` is set.
    """
    sel = selectors.DefaultSelector()
    assert proc.stdin is not None and proc.stdout is not None
    out, err = bytearray(), bytearray()
    pending = memoryview(data)
    os.set_blocking(proc.stdin.fileno(), False)
    if pending:
        sel.register(proc.stdin, selectors.EVENT_WRITE)
    elif close_stdin:
        proc.stdin.close()
    sel.register(proc.stdout, selectors.EVENT_READ)
    if proc.stderr is not None:
        sel.register(proc.stderr, selectors.EVENT_READ)
    exited_at: float | None = None
    timed_out = oversize = False
    try:
        while sel.get_map():
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                timed_out = True
                break
            if cancel is not None and cancel.is_set():
                return Exchange(bytes(out), bytes(err[-tail:]), False, False, False, cancelled=True)
            if exited_at is None and proc.poll() is not None:
                exited_at = now
            if exited_at is not None and now - exited_at > 0.2:
                break  # the leader is gone; a straggler holds the pipes
            wait = _TICK if deadline is None else min(_TICK, deadline - now)
            for key, _ in sel.select(wait):
                if key.fileobj is proc.stdin:
                    pending = _write(proc.stdin, pending)
                    if not pending:
                        sel.unregister(proc.stdin)
                        if close_stdin:
                            _close(proc.stdin)
                    continue
                chunk = os.read(key.fd, _CHUNK)
                if not chunk:
                    sel.unregister(key.fileobj)
                elif key.fileobj is proc.stdout:
                    out += chunk
                    if len(out) > max_output:
                        oversize = True
                        return Exchange(bytes(out[:max_output]), bytes(err[-tail:]), False, True, False)
                    if until_newline and b"\n" in chunk:
                        return Exchange(bytes(out), bytes(err[-tail:]), False, False, False)
                else:
                    err += chunk
                    del err[:-tail]
    finally:
        sel.close()
    eof = not timed_out and not oversize
    return Exchange(bytes(out), bytes(err[-tail:]), timed_out, oversize, eof)


def _write(pipe: IO[bytes], pending: memoryview) -> memoryview:
    try:
        return pending[os.write(pipe.fileno(), pending[:_CHUNK]) :]
    except BrokenPipeError:
        return pending[:0]  # the process stopped reading; its exit status will tell


def _close(pipe: IO[bytes]) -> None:
    with contextlib.suppress(OSError):
        pipe.close()


def kill_group(proc: subprocess.Popen[bytes], *, grace: float) -> None:
    """SIGTERM the process group, give the leader `grace` seconds, then SIGKILL the group; reap."""
    _signal_group(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    reap_group(proc)


def reap_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL whatever is left of the process group, reap the leader and close its pipes."""
    _signal_group(proc.pid, signal.SIGKILL)
    proc.wait()
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None:
            _close(pipe)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


@dataclass(eq=False)
class PythonWorker:
    """A long-lived process running `worker.py` for one tool: one JSON line in, one out.

    Its stderr (and the tool's prints) go to a temp file whose tail explains failures.
    """

    tool: str
    cwd: Path
    env: Mapping[str, str]
    proc: subprocess.Popen[bytes] = field(init=False)

    def __post_init__(self) -> None:
        self._err = tempfile.TemporaryFile()  # noqa: SIM115 (closed in kill())
        self.proc = spawn(
            [sys.executable, "-P", "-u", str(_WORKER)], cwd=self.cwd, env=self.env, stderr=self._err
        )

    def _tail(self, n: int) -> str:
        self._err.seek(0, os.SEEK_END)
        size = self._err.tell()
        self._err.seek(max(0, size - n))
        return self._err.read().decode(errors="replace")

    def ask(self, line: bytes, timeout: float | None, *, max_output: int, stderr_tail: int,
            cancel: threading.Event | None = None) -> dict[str, Any]:
        """Send one request line, return the decoded response; ToolError/ToolTimeout on failure
        (a permanent ToolError once `cancel` is set: the worker is then killed by its owner)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        ex = exchange(
            self.proc,
            line,
            deadline=deadline,
            max_output=max_output + 64,
            tail=0,
            until_newline=True,
            close_stdin=False,
            cancel=cancel,
        )
        if ex.cancelled:
            raise ToolError(self.tool, CANCELLED + "; its worker process was killed", permanent=True)
        if ex.timed_out:
            raise ToolTimeout(
                self.tool,
                timeout or 0.0,
                stderr_tail=self._tail(stderr_tail),
                detail="its worker process was killed",
            )
        if ex.oversize:
            raise ToolError(self.tool, f"returned more than {max_output} bytes of JSON (the result limit)")
        if not ex.stdout.endswith(b"\n"):
            code = self.proc.wait()
            raise ToolError(
                self.tool,
                f"the python tool worker {describe_exit(code)} during the call",
                stderr_tail=self._tail(stderr_tail),
            )
        return json.loads(ex.stdout)  # type: ignore[no-any-return]

    def kill(self, grace: float) -> None:
        """Close its stdin (a healthy worker exits at EOF), then end its process group."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()  # a healthy worker exits at EOF
            except OSError:
                pass
        kill_group(self.proc, grace=grace)
        self._err.close()
