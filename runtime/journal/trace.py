"""Run traces: slices and instant events on named lanes, written as Chrome trace JSON (Perfetto)."""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from planc.runtime.journal.clock import Clock

__all__ = ["Instant", "Slice", "TaskStats", "Tracer"]


@dataclass(frozen=True, slots=True)
class Slice:
    """A span of work: `start` and `duration` in clock seconds, on `lane` (a thread or device)."""

    name: str
    category: str
    start: float
    duration: float
    lane: str
    args: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Instant:
    """A point event (a retry, a breaker opening, a gate decision)."""

    name: str
    category: str
    time: float
    lane: str
    args: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TaskStats:
    """Per-name summary of slices, in seconds."""

    name: str
    count: int
    total: float
    median: float
    min: float
    max: float


class Tracer:
    """Collects slices and instants with an injected clock; thread-safe.

    Times are exported relative to the tracer's creation, in microseconds; each lane
    becomes a named thread of one process in the Chrome trace, in order of first use.
    """

    def __init__(self, clock: Clock, *, process: str = "planrt") -> None:
        self._clock = clock
        self._origin = clock.now()
        self._wall_origin = clock.wall()
        self._process = process
        self._lock = threading.Lock()
        self._slices: list[Slice] = []
        self._instants: list[Instant] = []
        self._lanes: dict[str, int] = {}

    @property
    def clock(self) -> Clock:
        return self._clock

    @contextlib.contextmanager
    def span(
        self, name: str, *, category: str = "task", lane: str = "main", **args: Any
    ) -> Iterator[dict[str, Any]]:
        """Time the body as one slice. The yielded dict adds args; an exception is recorded as `error`."""
        extra: dict[str, Any] = dict(args)
        start = self._clock.now()
        try:
            yield extra
        except BaseException as e:
            extra.setdefault("error", f"{type(e).__name__}: {e}")
            raise
        finally:
            self.add_slice(name, start, self._clock.now() - start, category=category, lane=lane, args=extra)

    def add_slice(
        self,
        name: str,
        start: float,
        duration: float,
        *,
        category: str = "task",
        lane: str = "main",
        args: Mapping[str, Any] | None = None,
    ) -> None:
        s = Slice(name, category, start, max(0.0, duration), lane, dict(args or {}))
        with self._lock:
            self._lane(lane)
            self._slices.append(s)

    def slice(
        self,
        name: str,
        category: str,
        start: float,
        duration: float,
        *,
        lane: str = "main",
        args: Mapping[str, Any] | None = None,
    ) -> None:
        """`add_slice` with the category positional: `slice(name, category, start, duration)`."""
        self.add_slice(name, start, duration, category=category, lane=lane, args=args)

    def instant(
        self,
        name: str,
        *,
        category: str = "event",
        lane: str = "main",
        args: Mapping[str, Any] | None = None,
        at: float | None = None,
    ) -> None:
        i = Instant(name, category, self._clock.now() if at is None else at, lane, dict(args or {}))
        with self._lock:
            self._lane(lane)
            self._instants.append(i)

    def _lane(self, lane: str) -> int:
        return self._lanes.setdefault(lane, len(self._lanes) + 1)

    @property
    def slices(self) -> tuple[Slice, ...]:
        with self._lock:
            return tuple(self._slices)

    @property
    def instants(self) -> tuple[Instant, ...]:
        with self._lock:
            return tuple(self._instants)

    def _us(self, t: float) -> float:
        return round((t - self._origin) * 1e6, 3)

    def events(self) -> list[dict[str, Any]]:
        """The Chrome trace events: metadata first, then slices ("X") and instants ("i") in time order."""
        with self._lock:
            lanes, slices, instants = dict(self._lanes), list(self._slices), list(self._instants)
        pid = 1
        out: list[dict[str, Any]] = [
            {"ph": "M", "pid": pid, "tid": 0, "name": "process_name", "args": {"name": self._process}}
        ]
        for lane, tid in lanes.items():
            out.append({"ph": "M", "pid": pid, "tid": tid, "name": "thread_name", "args": {"name": lane}})
            out.append(
                {"ph": "M", "pid": pid, "tid": tid, "name": "thread_sort_index", "args": {"sort_index": tid}}
            )
        timed: list[tuple[float, dict[str, Any]]] = []
        for s in slices:
            timed.append(
                (
                    s.start,
                    {
                        "ph": "X",
                        "pid": pid,
                        "tid": lanes[s.lane],
                        "name": s.name,
                        "cat": s.category,
                        "ts": self._us(s.start),
                        "dur": round(s.duration * 1e6, 3),
                        "args": _jsonable(s.args),
                    },
                )
            )
        for i in instants:
            timed.append(
                (
                    i.time,
                    {
                        "ph": "i",
                        "s": "t",
                        "pid": pid,
                        "tid": lanes[i.lane],
                        "name": i.name,
                        "cat": i.category,
                        "ts": self._us(i.time),
                        "args": _jsonable(i.args),
                    },
                )
            )
        timed.sort(key=lambda p: p[0])
        return out + [e for _, e in timed]

    def to_json(self) -> dict[str, Any]:
        return {
            "traceEvents": self.events(),
            "displayTimeUnit": "ms",
            "otherData": {"producer": "planrt", "wall_origin": self._wall_origin},
        }

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the trace atomically (temp file, then rename); returns the path."""
        target = Path(path)
        fd, tmp = tempfile.mkstemp(prefix=".trace-", suffix=".json", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(self.to_json(), f, separators=(",", ":"))
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return target

    def summary(self, category: str | None = None) -> dict[str, TaskStats]:
        """Count, total, median, min and max duration per slice name (optionally one category)."""
        groups: dict[str, list[float]] = {}
        for s in self.slices:
            if category is None or s.category == category:
                groups.setdefault(s.name, []).append(s.duration)
        return {
            name: TaskStats(name, len(d), sum(d), statistics.median(d), min(d), max(d))
            for name, d in groups.items()
        }

    def format_summary(self, category: str | None = None) -> str:
        """The summary as an aligned text table, slowest total first (durations in ms)."""
        rows = sorted(self.summary(category).values(), key=lambda s: (-s.total, s.name))
        width = max([4, *(len(r.name) for r in rows)])
        lines = [f"{'task':<{width}}  {'count':>5}  {'total ms':>10}  {'median ms':>10}  {'max ms':>10}"]
        for r in rows:
            lines.append(
                f"{r.name:<{width}}  {r.count:>5}  {r.total * 1e3:>10.3f}  "
                f"{r.median * 1e3:>10.3f}  {r.max * 1e3:>10.3f}"
            )
        return "\n".join(lines)


def _jsonable(args: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(dict(args), default=_default))


def _default(o: Any) -> Any:
    tolist = getattr(o, "tolist", None)
    return tolist() if callable(tolist) else str(o)
