"""Scheduling and placement of task graphs on heterogeneous devices.

``schedule(graph, platform, objective=..., method=...)`` is the entry point; see
docs/scheduling.md for the model, the algorithms and the objectives.
"""

from planc.compiler.scheduling.api import (
    AUTO_EXACT_NODES,
    AUTO_EXACT_TASKS,
    EXACT_MAX_TASKS,
    default_opt_time,
    schedule,
)
from planc.compiler.scheduling.bounds import Bounds
from planc.compiler.scheduling.listsched import ScheduleInfeasible
from planc.compiler.scheduling.platform import Device, Link, Platform, PlatformError
from planc.compiler.scheduling.problem import ScheduleInputError
from planc.compiler.scheduling.schedule import Method, Objective, Placement, Schedule
from planc.compiler.scheduling.validate import Constraint, ScheduleViolation, validate

__all__ = [
    "AUTO_EXACT_NODES",
    "AUTO_EXACT_TASKS",
    "EXACT_MAX_TASKS",
    "Bounds",
    "Constraint",
    "Device",
    "Link",
    "Method",
    "Objective",
    "Placement",
    "Platform",
    "PlatformError",
    "Schedule",
    "ScheduleInfeasible",
    "ScheduleInputError",
    "ScheduleViolation",
    "default_opt_time",
    "schedule",
    "validate",
]
