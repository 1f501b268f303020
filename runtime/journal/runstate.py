"""Journal records and the run state that replaying them rebuilds after a crash."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from planc.runtime.journal.valuestore import (
    Iteration,
    IterationLike,
    ValueFileError,
    ValueRef,
    iteration_of,
    read_value,
)

from planc.enums import TextEnum

__all__ = [
    "GateRecord",
    "JournalCorrupt",
    "JournalError",
    "LoopRecord",
    "RecordType",
    "RunState",
    "TaskRecord",
    "TaskStatus",
    "ToolIntent",
    "build_state",
]


class JournalError(RuntimeError):
    """A run directory cannot be used (missing, never started, malformed)."""


class JournalCorrupt(JournalError):
    """The journal or a value file it names is damaged: resuming from it would be unsafe."""


class RecordType(TextEnum, noun="journal record type", error=JournalCorrupt):
    RUN_STARTED = "run_started"
    TASK_FINISHED = "task_finished"
    TOOL_INTENT = "tool_intent"
    TOOL_COMPLETED = "tool_completed"
    TOOL_FAILED = "tool_failed"
    GATE_DECIDED = "gate_decided"
    LOOP_ITERATION = "loop_iteration"
    RUN_FINISHED = "run_finished"


class TaskStatus(TextEnum, noun="task status", error=JournalCorrupt):
    OK = "ok"
    SKIPPED = "skipped"
    FAILED = "failed"


Key = tuple[str, Iteration]


@dataclass(frozen=True, slots=True)
class TaskRecord:
    task: str
    iteration: Iteration
    status: TaskStatus
    values: Mapping[str, Any]
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ToolIntent:
    key: str
    task: str
    tool: str
    iteration: Iteration
    attempt: int


@dataclass(frozen=True, slots=True)
class GateRecord:
    gate: str
    iteration: Iteration
    decision: str
    by: str
    source: str
    default: bool
    value: Any = None


@dataclass(frozen=True, slots=True)
class LoopRecord:
    loop: str
    iteration: Iteration
    done: bool


@dataclass(frozen=True, slots=True)
class RunState:
    """What a journal says happened. Keys of `tasks` and `gates` are (name, iteration tuple).

    `tool_results` holds completed calls (never issue them again); `in_flight` holds calls
    with an intent but no completion whose task did not finish: re-issue them with the same
    idempotency key (at-least-once). `loops` holds each loop's last journaled iteration.
    """

    run_id: str
    bundle_sha256: str
    inputs: Mapping[str, Any]
    tasks: Mapping[Key, TaskRecord] = field(default_factory=dict)
    tool_results: Mapping[str, Any] = field(default_factory=dict)
    in_flight: Mapping[str, ToolIntent] = field(default_factory=dict)
    tool_failures: Mapping[str, tuple[int, str]] = field(default_factory=dict)
    gates: Mapping[Key, GateRecord] = field(default_factory=dict)
    loops: Mapping[str, LoopRecord] = field(default_factory=dict)
    status: str | None = None
    records: int = 0

    def finished(self, task: str, iteration: IterationLike = None) -> TaskRecord | None:
        """The task's record at that iteration (None, an int or a tuple), or None if it did not finish."""
        return self.tasks.get((task, iteration_of(iteration)))

    def values(self) -> dict[str, Any]:
        """Inputs plus every finished task's values, later records winning (a loop's last iteration)."""
        out = dict(self.inputs)
        for rec in self.tasks.values():
            out.update(rec.values)
        return out


def build_state(run: Path, records: Sequence[Mapping[str, Any]]) -> RunState:
    """Fold verified journal records into a RunState, loading and hash-checking value files."""
    if not records or records[0].get("type") != RecordType.RUN_STARTED.value:
        raise JournalError(f"{run}: the journal does not start with run_started")
    first = records[0]
    inputs = {n: _load(run, r, "input " + n) for n, r in dict(first.get("inputs") or {}).items()}
    tasks: dict[Key, TaskRecord] = {}
    intents: dict[str, ToolIntent] = {}
    results: dict[str, Any] = {}
    failures: dict[str, tuple[int, str]] = {}
    gates: dict[Key, GateRecord] = {}
    loops: dict[str, LoopRecord] = {}
    status: str | None = None
    for rec in records[1:]:
        t = RecordType.parse(str(rec.get("type")))
        try:
            if t is RecordType.TASK_FINISHED:
                values = {n: _load(run, r, f"task {rec['task']}") for n, r in rec["values"].items()}
                it = iteration_of(rec["iteration"])
                tasks[(rec["task"], it)] = TaskRecord(
                    rec["task"], it, TaskStatus.parse(rec["status"]), values, rec.get("reason")
                )
            elif t is RecordType.TOOL_INTENT:
                intents[rec["key"]] = ToolIntent(
                    rec["key"], rec["task"], rec["tool"], iteration_of(rec["iteration"]), rec["attempt"]
                )
            elif t is RecordType.TOOL_COMPLETED:
                results[rec["key"]] = rec["result"]
            elif t is RecordType.TOOL_FAILED:
                failures[rec["key"]] = (rec["attempt"], rec["error"])
            elif t is RecordType.GATE_DECIDED:
                value = _load(run, rec["value"], f"gate {rec['gate']}") if rec.get("value") else None
                it = iteration_of(rec["iteration"])
                gates[(rec["gate"], it)] = GateRecord(
                    rec["gate"], it, rec["decision"], rec["by"], rec["source"], rec["default"], value
                )
            elif t is RecordType.LOOP_ITERATION:
                loops[rec["loop"]] = LoopRecord(rec["loop"], iteration_of(rec["iteration"]), rec["done"])
            elif t is RecordType.RUN_FINISHED:
                status = rec["status"]
            else:
                raise JournalCorrupt(f"{run}: record {rec.get('seq')}: a second run_started record")
        except (KeyError, TypeError, AttributeError, ValueError) as e:
            raise JournalCorrupt(
                f"{run}: journal record {rec.get('seq')} ({t.value}) is malformed: missing or bad field {e}"
            ) from None
    in_flight = {k: i for k, i in intents.items() if k not in results and (i.task, i.iteration) not in tasks}
    return RunState(
        str(first.get("run")),
        str(first.get("bundle_sha256")),
        inputs,
        tasks,
        results,
        in_flight,
        failures,
        gates,
        loops,
        status,
        len(records),
    )


def _load(run: Path, ref: Any, what: str) -> Any:
    try:
        return read_value(run, ValueRef.from_json(ref))
    except ValueFileError as e:
        raise JournalCorrupt(f"{run}: {what}: {e}") from None
