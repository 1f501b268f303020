"""The kinds of task a manifest holds, in the order the schema names them."""

from __future__ import annotations

from planc.enums import TextEnum

__all__ = ["TASK_KIND_NAMES", "TaskKind"]


class TaskKind(TextEnum, noun="task kind"):
    """What a manifest task is: the value is its `kind`."""

    COMPUTE = "compute"
    BUILTIN = "builtin"
    TOOL = "tool"
    GATE = "gate"
    LOOP = "loop"


TASK_KIND_NAMES: tuple[str, ...] = tuple(k.value for k in TaskKind)
