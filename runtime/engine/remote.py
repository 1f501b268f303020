"""The protocol of an engine that computes off this process (Ray's, or another): the runner knows no more."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from planc.runtime.bundle.loader import Bundle
    from planc.runtime.engine.values import Value

__all__ = ["ENGINES", "RemoteEngine", "RemoteFactory", "check_engine"]

ENGINES = ("local", "ray")


class RemoteEngine(Protocol):
    """Runs compute tasks elsewhere: which variant each module runs, where, and the compute service."""

    @property
    def variants(self) -> Mapping[str, str]: ...

    def placement(self) -> Mapping[str, Mapping[str, str]]: ...

    def service(self, tracer: Any = None) -> Callable[[Mapping[str, Any], list[Value]], list[Value]]: ...

    def close(self) -> None: ...


# Opens the engine for one bundle at a cluster address (None: the engine's default).
RemoteFactory = Callable[["Bundle", "str | None"], RemoteEngine]


def check_engine(name: str) -> str:
    """`name` if it is a known engine; a ValueError naming the known ones otherwise."""
    if name not in ENGINES:
        raise ValueError(f"unknown engine '{name}', expected one of: {', '.join(ENGINES)}")
    return name
