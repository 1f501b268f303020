"""Typed results of a run: each output a tensor, a JSON value (a tool's result) or skipped."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from planc.runtime.engine.executor import RunStatus

__all__ = ["Output", "OutputKind", "Result"]


class OutputKind(enum.Enum):
    TENSOR = "tensor"
    JSON = "json"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class Output:
    """One output of a run. `value` is a numpy array (TENSOR), any JSON value (JSON) or None (SKIPPED:
    its task's guard was false, a gate rejected it, or a tool's failure policy skipped it)."""

    name: str
    kind: OutputKind
    value: Any = None

    @classmethod
    def of(cls, name: str, value: Any) -> Output:
        if value is None:
            return cls(name, OutputKind.SKIPPED)
        if isinstance(value, (np.ndarray, np.generic)):
            return cls(name, OutputKind.TENSOR, np.asarray(value))
        return cls(name, OutputKind.JSON, value)

    @property
    def skipped(self) -> bool:
        return self.kind is OutputKind.SKIPPED


@dataclass(frozen=True)
class Result:
    """What one run of a plan gave.

    `status` is COMPLETED, REJECTED (a review gate rejected; `rejected_by` names it) or FAILED (`error`
    says which task and why). `model_version` is the bundle's sha256. `run_id` names the run directory
    of a journaled run (an idempotency key, or a journal folder; `run_dir` is its path); `replayed` is true when the result came back from an
    earlier run with the same key instead of running again."""

    status: RunStatus
    outputs: Mapping[str, Output]
    model_version: str
    error: str | None = None
    rejected_by: str | None = None
    iterations: Mapping[str, int] = field(default_factory=dict)
    task_seconds: Mapping[str, float] = field(default_factory=dict)
    skipped: tuple[str, ...] = ()
    run_id: str | None = None
    replayed: bool = False
    run_dir: Path | None = None
    trace: Any = None  # a planc.runtime.journal.trace.Tracer when the run was traced

    @property
    def ok(self) -> bool:
        """Whether the run did not fail (a rejected run is not a failure: the plan said what to do)."""
        return self.status is not RunStatus.FAILED

    def __getitem__(self, name: str) -> Any:
        """An output's value: an array, a JSON value, or None when it was skipped."""
        try:
            return self.outputs[name].value
        except KeyError:
            raise KeyError(f"no output '{name}'; the plan's outputs: {', '.join(self.outputs)}") from None
