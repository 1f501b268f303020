"""The run directory: a write-ahead journal (fsynced JSON lines), atomic value files and a run lock."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import re
import secrets
import shutil
import threading
import time
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

from planc.runtime.journal.clock import Clock, SystemClock
from planc.runtime.journal.runstate import (
    GateRecord,
    JournalCorrupt,
    JournalError,
    LoopRecord,
    RecordType,
    RunState,
    TaskRecord,
    TaskStatus,
    ToolIntent,
    build_state,
)
from planc.runtime.journal.valuestore import (
    Iteration,
    IterationLike,
    ValueRef,
    atomic_write,
    fsync_dir,
    iteration_of,
    value_sha256,
    write_value,
)

__all__ = [
    "AUDIT",
    "JOURNAL",
    "LOCK",
    "VALUES",
    "WORK",
    "GateRecord",
    "Iteration",
    "IterationLike",
    "Journal",
    "JournalCorrupt",
    "JournalError",
    "LoopRecord",
    "RecordType",
    "RunDir",
    "RunLocked",
    "RunState",
    "TaskRecord",
    "TaskStatus",
    "ToolIntent",
    "ValueRef",
    "atomic_write",
    "fsync_dir",
    "iteration_of",
    "value_sha256",
]

log = logging.getLogger(__name__)

JOURNAL, AUDIT, LOCK, VALUES, WORK = "journal.jsonl", "audit.jsonl", "run.lock", "values", "work"
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


class RunLocked(JournalError):
    """Another process holds the run directory's lock."""


def _encode(record: Mapping[str, Any]) -> bytes:
    body = json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
    crc = zlib.crc32(body)
    return body[:-1] + b',"crc":"%08x"}\n' % crc


def _decode(line: bytes, seq: int) -> dict[str, Any]:
    """One journal line -> record; ValueError says what is wrong with it."""
    try:
        rec = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"is not JSON ({e})") from None
    if not isinstance(rec, dict) or not isinstance(rec.get("crc"), str):
        raise ValueError("has no checksum")  # noqa: TRY004 (a damaged line)
    crc = rec.pop("crc")
    body = json.dumps(rec, sort_keys=True, separators=(",", ":")).encode()
    if f"{zlib.crc32(body):08x}" != crc:
        raise ValueError("fails its checksum")
    if rec.get("seq") != seq:
        raise ValueError(f"has sequence number {rec.get('seq')!r}, expected {seq}")
    return rec


class Journal:
    """An append-only, fsynced JSON-lines log. A record counts once its whole line, newline
    included, is on disk: a torn last line (a crash mid-append) is dropped on open, while a
    damaged record followed by good ones is refused (JournalCorrupt).
    """

    def __init__(self, path: Path, records: list[dict[str, Any]], *, clock: Clock) -> None:
        self.path, self._clock = path, clock
        self._records = records
        self._lock = threading.Lock()
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)

    @classmethod
    def open(cls, path: Path, *, clock: Clock) -> Journal:
        """Read and verify `path`, cut a torn tail off (durably), and open it for appending."""
        records, good = cls.scan(path)
        if path.exists() and path.stat().st_size != good:
            log.warning(
                "%s: dropping a torn last record (%d bytes) left by a crash", path, path.stat().st_size - good
            )
            with open(path, "r+b") as f:
                f.truncate(good)
                f.flush()
                os.fsync(f.fileno())
        return cls(path, records, clock=clock)

    @staticmethod
    def scan(path: Path) -> tuple[list[dict[str, Any]], int]:
        """The verified records of `path` and the byte length they cover."""
        data = path.read_bytes() if path.exists() else b""
        records: list[dict[str, Any]] = []
        pos = 0
        while pos < len(data):
            nl = data.find(b"\n", pos)
            if nl < 0:
                break  # torn: the line never got its newline
            try:
                records.append(_decode(data[pos:nl], len(records)))
            except ValueError as e:
                if not data[nl + 1 :].strip():
                    break  # a damaged last line is a torn write
                raise JournalCorrupt(
                    f"{path}: record {len(records) + 1} (byte {pos}) {e}, and records follow it: the journal "
                    "is damaged before its end; refusing to resume from it"
                ) from None
            pos = nl + 1
        return records, pos

    @property
    def records(self) -> tuple[dict[str, Any], ...]:
        with self._lock:
            return tuple(self._records)

    def append(self, type_: RecordType, **fields: Any) -> dict[str, Any]:
        """Durably append one record (write, fsync) and return it with its `seq`, `type` and `at`."""
        with self._lock:
            rec = {**fields, "seq": len(self._records), "type": type_.value, "at": self._clock.wall()}
            line = _encode(rec)
            view = memoryview(line)
            end = os.fstat(self._fd).st_size
            try:
                while view:
                    view = view[os.write(self._fd, view) :]
                os.fsync(self._fd)
            except OSError as e:
                # A record half written (disk full) would turn into damage once another record follows
                # it: cut it off, so the journal keeps exactly the records before this one.
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, end)
                raise JournalError(
                    f"cannot append to {self.path}: {e.strerror or e}; the journal keeps every record "
                    f"before this one: fix that, then `planrt resume {self.path.parent}`"
                ) from None
            self._records.append(rec)
            return rec

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


class _RunLock:
    """An exclusive fcntl.flock on `run.lock`, holding the owner's pid for error messages."""

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            owner = os.pread(self._fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(self._fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise RunLocked(
                    f"run directory {path.parent} is in use by another planrt process "
                    f"(pid {owner}); wait for it to finish or stop it first"
                ) from None
            raise
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        if self._fd >= 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = -1


def _abandon(path: Path) -> None:
    """Remove a run directory whose run never started (no durable run_started): no half-made runs."""
    try:
        started = bool(Journal.scan(path / JOURNAL)[0])
    except (OSError, JournalError):
        started = True
    if not started:
        shutil.rmtree(path, ignore_errors=True)


class RunDir:
    """One run's directory: `journal.jsonl`, `audit.jsonl`, `values/`, `work/` (tools' cwd), `run.lock`.

    Holding a RunDir holds its lock; `close()` (or a `with` block) releases it. Every
    `record_*` method returns once its record is durable. Value files are written
    before the record that names them, so a committed record's files always exist.
    """

    def __init__(self, path: Path, lock: _RunLock, journal: Journal, clock: Clock) -> None:
        self.path, self._lock, self.journal, self.clock = path, lock, journal, clock
        first = journal.records[0] if journal.records else {}
        self.run_id: str = first.get("run", path.name)
        self.bundle_sha256: str = first.get("bundle_sha256", "")
        self.bundle_path: str | None = first.get("bundle_path")
        self.engine: dict[str, Any] = dict(first.get("engine") or {})  # e.g. {"engine": "ray", "address": ...}

    @property
    def audit_path(self) -> Path:
        return self.path / AUDIT

    @property
    def work_dir(self) -> Path:
        return self.path / WORK

    @classmethod
    def create(
        cls,
        root: str | os.PathLike[str],
        bundle_sha: str,
        inputs: Mapping[str, Any],
        *,
        run_id: str | None = None,
        clock: Clock | None = None,
        bundle_path: str | None = None,
        engine: Mapping[str, Any] | None = None,
    ) -> RunDir:
        """Make `root/<run_id>` (a fresh id by default), store the inputs and journal `run_started`
        (with the bundle's path, so `planrt resume` finds it)."""
        clock = clock or SystemClock()
        run_id = run_id or time.strftime(
            "%Y%m%d-%H%M%S", time.gmtime(clock.wall())
        ) + "-" + secrets.token_hex(3)
        if not _RUN_ID.fullmatch(run_id):
            raise JournalError(
                f"bad run id {run_id!r}: expected letters, digits, '_', '.', '-' (at most 128)"
            )
        root_path = Path(root)
        path = root_path / run_id
        try:
            root_path.mkdir(parents=True, exist_ok=True)
            path.mkdir()
        except FileExistsError:
            raise JournalError(
                f"run directory {path} already exists; resume it or pick another run id"
            ) from None
        except OSError as e:
            raise JournalError(f"cannot create run directory {path}: {e.strerror or e}") from None
        try:
            (path / VALUES).mkdir()
            (path / WORK).mkdir()
            fsync_dir(path)
            fsync_dir(root_path)
            lock = _RunLock(path / LOCK)
        except OSError as e:
            _abandon(path)
            raise JournalError(f"cannot create run directory {path}: {e.strerror or e}") from None
        try:
            refs = {name: write_value(path, name, None, v).to_json() for name, v in inputs.items()}
            journal = Journal(path / JOURNAL, [], clock=clock)
            journal.append(
                RecordType.RUN_STARTED, run=run_id, bundle_sha256=bundle_sha, inputs=refs, pid=os.getpid(),
                bundle_path=bundle_path, engine=dict(engine) if engine else None,
            )
            fsync_dir(path)
        except BaseException as e:
            lock.release()
            _abandon(path)
            if isinstance(e, OSError):
                raise JournalError(f"cannot start the run in {path}: {e.strerror or e}") from None
            raise
        return cls(path, lock, journal, clock)

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, clock: Clock | None = None) -> RunDir:
        """Lock an existing run directory and open its journal (dropping a torn last record)."""
        p, clock = Path(path), clock or SystemClock()
        if not (p / JOURNAL).is_file():
            raise JournalError(f"{p} is not a run directory (no {JOURNAL})")
        lock = _RunLock(p / LOCK)
        try:
            journal = Journal.open(p / JOURNAL, clock=clock)
            if not journal.records or journal.records[0].get("type") != RecordType.RUN_STARTED.value:
                journal.close()
                raise JournalError(f"{p}: the run never started (no run_started record); start a new run")
        except BaseException:
            lock.release()
            raise
        return cls(p, lock, journal, clock)

    def replay(self) -> RunState:
        """Rebuild the run's state from its journal, loading and hash-checking every value file."""
        return build_state(self.path, self.journal.records)

    def record_task_finished(
        self,
        task: str,
        values: Mapping[str, Any],
        *,
        iteration: IterationLike = None,
        status: TaskStatus = TaskStatus.OK,
        reason: str | None = None,
    ) -> dict[str, ValueRef]:
        """Store `values` (ndarray/numpy scalar -> .npy, anything else -> JSON) and journal the task."""
        refs = {name: write_value(self.path, name, iteration, v) for name, v in values.items()}
        self.journal.append(
            RecordType.TASK_FINISHED,
            task=task,
            iteration=list(iteration_of(iteration)),
            status=status.value,
            reason=reason,
            values={n: r.to_json() for n, r in refs.items()},
        )
        return refs

    def record_tool_intent(
        self, key: str, *, task: str, tool: str, attempt: int, iteration: IterationLike = None
    ) -> None:
        """Journal that a tool call is about to be issued (before it is)."""
        self.journal.append(
            RecordType.TOOL_INTENT,
            key=key,
            task=task,
            tool=tool,
            attempt=attempt,
            iteration=list(iteration_of(iteration)),
        )

    def record_tool_completed(self, key: str, result: Any) -> None:
        """Journal a tool call's (JSON) result: the call is never issued again."""
        self.journal.append(RecordType.TOOL_COMPLETED, key=key, result=result)

    def record_tool_failed(self, key: str, *, attempt: int, error: str) -> None:
        self.journal.append(RecordType.TOOL_FAILED, key=key, attempt=attempt, error=error)

    def record_gate_decided(
        self,
        gate: str,
        *,
        decision: str,
        by: str,
        source: str,
        default: bool,
        iteration: IterationLike = None,
        value: Any = None,
    ) -> None:
        """Journal a gate's decision; `value` (an edited value) is stored as a value file."""
        ref = (
            write_value(self.path, f"{gate}.gate", iteration, value).to_json() if value is not None else None
        )
        self.journal.append(
            RecordType.GATE_DECIDED,
            gate=gate,
            iteration=list(iteration_of(iteration)),
            decision=decision,
            by=by,
            source=source,
            default=default,
            value=ref,
        )

    def record_loop_iteration(self, loop: str, iteration: IterationLike, *, done: bool) -> None:
        self.journal.append(
            RecordType.LOOP_ITERATION, loop=loop, iteration=list(iteration_of(iteration)), done=done
        )

    def record_run_finished(self, status: str, *, error: str | None = None) -> None:
        self.journal.append(RecordType.RUN_FINISHED, status=status, error=error)

    def close(self) -> None:
        """Close the journal and release the lock (idempotent)."""
        self.journal.close()
        self._lock.release()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
