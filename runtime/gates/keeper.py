"""Human review gates: decision sources (auto, a decisions directory, a TTY) and the audit log."""

from __future__ import annotations

import getpass
import json
import logging
import os
import queue
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TextIO

import numpy as np
from planc.runtime.journal.clock import Clock, SystemClock
from planc.runtime.journal.valuestore import (
    Iteration,
    IterationLike,
    iteration_of,
    iteration_text,
    value_sha256,
)

from planc.enums import TextEnum

__all__ = [
    "Answer",
    "AuditLog",
    "AutoApprove",
    "Decision",
    "DecisionsDir",
    "GateDecision",
    "GateError",
    "GateKeeper",
    "GateRequest",
    "GateSource",
    "Interactive",
    "NoAnswer",
]

log = logging.getLogger(__name__)


class GateError(ValueError):
    """A gate cannot be decided as asked (bad default, bad source)."""


class Decision(TextEnum, noun="gate decision", error=GateError):
    APPROVE = "approve"
    REJECT = "reject"


@dataclass(frozen=True, slots=True)
class GateRequest:
    """What a gate asks: its name, the value under review, the loop iteration (() outside loops)."""

    gate: str
    value: Any
    iteration: Iteration
    timeout: float | None
    default: Decision


@dataclass(frozen=True, slots=True)
class Answer:
    """A source's decision; `value` is an edited value (already converted) or None."""

    decision: Decision
    by: str
    value: Any = None


@dataclass(frozen=True, slots=True)
class NoAnswer:
    """No decision came: the default applies. `reason` says why ("timeout", "input closed")."""

    reason: str


@dataclass(frozen=True, slots=True)
class GateDecision:
    """A decided gate. `value` is the value as approved (edited or original); `default` says
    whether the gate's default was taken (timeout, closed input); `at` is wall-clock seconds."""

    gate: str
    iteration: Iteration
    decision: Decision
    by: str
    source: str
    default: bool
    edited: bool
    value: Any
    value_sha256: str
    at: float

    @property
    def approved(self) -> bool:
        return self.decision is Decision.APPROVE


class AuditLog:
    """Append-only, fsynced JSON lines (`audit.jsonl`): who decided what, when."""

    def __init__(self, path: str | os.PathLike[str], *, clock: Clock | None = None) -> None:
        self.path = Path(path)
        self._clock = clock or SystemClock()
        self._lock = threading.Lock()

    def append(self, event: str, **fields: Any) -> dict[str, Any]:
        rec = {"at": self._clock.wall(), "event": event, **fields}
        line = (json.dumps(rec, sort_keys=True, default=str) + "\n").encode()
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                view = memoryview(line)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
        return rec

    def read(self) -> list[dict[str, Any]]:
        """Every complete entry (a torn last line is left out)."""
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_bytes().split(b"\n"):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out


class GateSource(Protocol):
    """Where decisions come from. `wait` returns an Answer, or NoAnswer at `deadline`
    (clock.now() seconds; None waits forever); it may write notes to `audit`."""

    name: str

    def wait(
        self, request: GateRequest, deadline: float | None, clock: Clock, audit: AuditLog
    ) -> Answer | NoAnswer: ...


class AutoApprove:
    """Approves every gate at once (unattended runs and tests)."""

    name = "auto"

    def __init__(self, by: str = "planrt --auto-approve") -> None:
        self.by = by

    def wait(
        self, request: GateRequest, deadline: float | None, clock: Clock, audit: AuditLog
    ) -> Answer | NoAnswer:
        return Answer(Decision.APPROVE, self.by)


class DecisionsDir:
    """Polls a directory for `<gate>.json` (inside a loop, `<gate>@<i>.json` first, e.g. `review@2.json`):
    `{"decision": "approve"|"reject", "by": "who", "value": optional edited value}`.

    Writers should write a temp file and rename it. An invalid file is noted once in the audit
    log (per version of the file) and ignored; polling goes on until a valid one or the deadline.
    """

    def __init__(self, path: str | os.PathLike[str], *, poll_interval: float = 0.2) -> None:
        self.path = Path(path)
        self.poll_interval = poll_interval
        self.name = f"decisions-dir:{self.path}"
        self._rejected: dict[Path, tuple[int, int]] = {}

    def candidates(self, request: GateRequest) -> list[Path]:
        it = iteration_text(request.iteration)
        names = [f"{request.gate}@{it}.json"] if it else []
        return [self.path / n for n in (*names, f"{request.gate}.json")]

    def wait(
        self, request: GateRequest, deadline: float | None, clock: Clock, audit: AuditLog
    ) -> Answer | NoAnswer:
        while True:
            for file in self.candidates(request):
                answer = self._try(file, request, audit)
                if answer is not None:
                    return answer
            now = clock.now()
            if deadline is not None and now >= deadline:
                return NoAnswer("timeout")
            clock.sleep(self.poll_interval if deadline is None else min(self.poll_interval, deadline - now))

    def _try(self, file: Path, request: GateRequest, audit: AuditLog) -> Answer | None:
        try:
            st = file.stat()
        except FileNotFoundError:
            return None
        sig = (st.st_mtime_ns, st.st_size)
        if self._rejected.get(file) == sig:
            return None
        try:
            return _parse_answer(file.read_bytes(), request)
        except (OSError, ValueError) as e:
            self._rejected[file] = sig
            log.warning("gate '%s': ignoring %s: %s", request.gate, file, e)
            audit.append(
                "gate_input_invalid",
                gate=request.gate,
                iteration=list(request.iteration),
                file=str(file),
                error=str(e),
            )
            return None


def _parse_answer(data: bytes, request: GateRequest) -> Answer:
    try:
        d = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"not valid JSON ({e})") from None
    if not isinstance(d, dict):
        raise ValueError(  # noqa: TRY004 (a bad file, reported like every other)
            'expected an object {"decision": "approve"|"reject", "by": "...", "value": ...}'
        )
    unknown = sorted(set(d) - {"decision", "by", "value"})
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(unknown)}; expected decision, by, value")
    try:
        decision = Decision.parse(d.get("decision"))  # type: ignore[arg-type]
    except GateError as e:
        raise ValueError(str(e)) from None
    by = d.get("by")
    if not isinstance(by, str) or not by.strip():
        raise ValueError("'by' must name who decided (a non-empty string)")
    if "value" in d and decision is Decision.REJECT:
        raise ValueError("an edited 'value' only goes with 'approve'")
    value = convert_edit(d["value"], request.value) if "value" in d else None
    return Answer(decision, by.strip(), value)


def convert_edit(edit: Any, original: Any) -> Any:
    """An edited value (nested lists) as an array of the original's dtype and shape."""
    if not isinstance(original, np.ndarray):
        return edit
    try:
        arr = np.asarray(edit, dtype=original.dtype)
    except (TypeError, ValueError) as e:
        raise ValueError(f"edited value is not a {original.dtype} array ({e})") from None
    if arr.shape != original.shape:
        raise ValueError(f"edited value has shape {list(arr.shape)}, expected {list(original.shape)}")
    return arr


class Interactive:
    """Asks on a terminal: approve / reject / show. Streams are injectable for tests; input is read
    by one background thread, so a timeout can interrupt the wait. Closed input takes the default."""

    name = "interactive"

    def __init__(
        self, input: TextIO | None = None, output: TextIO | None = None, *, by: str | None = None
    ) -> None:
        self._in, self._out = input or sys.stdin, output or sys.stderr
        self.by = by or _user()
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader: threading.Thread | None = None

    def _read(self) -> None:
        for line in iter(self._in.readline, ""):
            self._lines.put(line)
        self._lines.put(None)

    def _say(self, text: str) -> None:
        self._out.write(text)
        self._out.flush()

    def wait(
        self, request: GateRequest, deadline: float | None, clock: Clock, audit: AuditLog
    ) -> Answer | NoAnswer:
        if self._reader is None:
            self._reader = threading.Thread(target=self._read, name="gate-input", daemon=True)
            self._reader.start()
        limit = f", default {request.default.value} in {request.timeout:g}s" if request.timeout else ""
        it = iteration_text(request.iteration)
        where = f" (iteration {it})" if it else ""
        self._say(f"gate '{request.gate}'{where}: {_describe(request.value)}{limit}\n")
        while True:
            self._say("approve, reject or show? [a/r/s] ")
            wait = None if deadline is None else max(0.0, deadline - clock.now())
            try:
                line = self._lines.get(timeout=wait)
            except queue.Empty:
                self._say("\n")
                return NoAnswer("timeout")
            if line is None:
                self._lines.put(None)  # stays closed for later gates
                self._say("\n")
                return NoAnswer("input closed")
            word = line.strip().lower()
            if word in ("a", "approve", "y", "yes"):
                return Answer(Decision.APPROVE, self.by)
            if word in ("r", "reject", "n", "no"):
                return Answer(Decision.REJECT, self.by)
            if word in ("s", "show"):
                self._say(_show(request.value) + "\n")
            else:
                self._say(f"unknown answer {line.strip()!r}\n")


def _user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.dtype}{list(value.shape)}"
    return type(value).__name__


def _show(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return np.array2string(value, threshold=200, precision=4)
    return json.dumps(value, indent=1, default=str)


class GateKeeper:
    """Decides gates from one source and writes every decision to the audit log."""

    def __init__(self, source: GateSource, audit: AuditLog, *, clock: Clock | None = None) -> None:
        self.source, self.audit, self.clock = source, audit, clock or SystemClock()

    def decide(
        self,
        gate: str,
        value: Any,
        *,
        timeout: float | None,
        default: Decision | str,
        iteration: IterationLike = None,
    ) -> GateDecision:
        """Ask the source; at `timeout` seconds (None: wait forever) the `default` applies."""
        default = default if isinstance(default, Decision) else Decision.parse(default)
        iteration = iteration_of(iteration)
        req = GateRequest(gate, value, iteration, timeout, default)
        self.audit.append(
            "gate_waiting",
            gate=gate,
            iteration=list(iteration),
            source=self.source.name,
            timeout=timeout,
            default=default.value,
            value_sha256=value_sha256(value),
        )
        deadline = None if timeout is None else self.clock.now() + timeout
        ans = self.source.wait(req, deadline, self.clock, self.audit)
        if isinstance(ans, NoAnswer):
            decision, by, edited, final = default, f"default ({ans.reason})", False, value
        else:
            decision, by, edited = ans.decision, ans.by, ans.value is not None
            final = ans.value if edited else value
        rec = self.audit.append(
            "gate_decided",
            gate=gate,
            iteration=list(iteration),
            decision=decision.value,
            by=by,
            source=self.source.name,
            default=isinstance(ans, NoAnswer),
            edited=edited,
            value_sha256=value_sha256(final),
            **({"original_sha256": value_sha256(value)} if edited else {}),
        )
        log.info("gate '%s': %s by %s", gate, decision.value, by)
        return GateDecision(
            gate,
            iteration,
            decision,
            by,
            self.source.name,
            isinstance(ans, NoAnswer),
            edited,
            final,
            rec["value_sha256"],
            rec["at"],
        )
