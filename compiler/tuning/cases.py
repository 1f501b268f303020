"""What planc tune times and what it measured: module cases, measurements and traced task times."""

from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass, field, replace
from typing import Any

from planc.compiler.costs.model import ComputeFacts

__all__ = ["Measurement", "ModuleCase", "TaskTimes", "TensorSig", "with_dispatches"]

log = logging.getLogger(__name__)

TensorSig = tuple[str, tuple[int, ...]]  # ("f32", (1, 64))


@dataclass(frozen=True, slots=True)
class ModuleCase:
    """One compiled module variant to time: its bytes, the driver it runs on, the declared
    types of its inputs, the dtypes of its outputs, and its cost facts. `target` is the
    variant's target, which is also the device kind its time belongs to; `source` is
    "bench" for a bundle's module, "probe" for one of planc tune's probes."""

    module: str
    target: str
    driver: str
    vmfb: bytes = field(repr=False)
    inputs: tuple[TensorSig, ...]
    outputs: tuple[str, ...]
    facts: ComputeFacts
    source: str = "bench"
    params: Any = field(default=None, repr=False, compare=False)  # the bundle's weights (engine/params.py)


@dataclass(frozen=True, slots=True)
class Measurement:
    """The time one module variant took: median and interquartile range (`spread`) in
    seconds over `samples` runs. `source` is "bench" (a bundle module timed by planc
    tune), "probe" (one of planc tune's probe modules: it informs the fit but is no module
    of the plan) or "trace" (compute slices of a planrt trace, argument copies included)."""

    module: str
    target: str
    driver: str
    facts: ComputeFacts
    median: float
    spread: float
    samples: int
    source: str = "bench"


@dataclass(frozen=True, slots=True)
class TaskTimes:
    """The durations (seconds) of one task's slices in planrt traces; `kind` is the slice
    category (compute, builtin, tool, gate), `tool` the tool a tool task calls."""

    task: str
    kind: str
    durations: tuple[float, ...]
    tool: str | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.durations)


def with_dispatches(facts: ComputeFacts, vmfb: bytes) -> ComputeFacts:
    """`facts` with the dispatch count of the compiled module (costs.dispatches), when readable."""
    from planc.compiler.costs.dispatches import DispatchCountError, dispatch_count

    try:
        return replace(facts, dispatches=dispatch_count(vmfb))
    except DispatchCountError as e:
        log.warning("cannot count dispatches: %s", e)
        return facts
