"""The served models: one loaded Plan per name, swapped atomically while in-flight runs finish on the old."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from planc.runtime.api.plan import Plan

__all__ = ["ModelNotFound", "Repository", "Served"]

log = logging.getLogger(__name__)


class ModelNotFound(KeyError):
    """No model of that name is served."""


@dataclass(eq=False)
class Served:
    """One version of a model: its Plan, the path it came from, and how many requests use it."""

    plan: Plan
    path: Path
    active: int = 0
    retired: bool = False

    @property
    def name(self) -> str:
        return self.plan.name


class Repository:
    """Models by name. `use(name)` pins the current version for one request; `swap` puts a new one in
    place at once (new requests get it) and closes the old one when its last request is done."""

    def __init__(self, loader: Callable[[Path], Plan]) -> None:
        self._loader = loader
        self._lock = threading.Lock()
        self._models: dict[str, Served] = {}

    def add(self, path: Path) -> Served:
        """Load a bundle and serve it under its plan's name (refused when that name is taken)."""
        served = Served(self._loader(path), path)
        with self._lock:
            if served.name in self._models:
                served.plan.close()
                raise ValueError(f"two bundles serve the model '{served.name}' ({self._models[served.name].path} "
                                 f"and {path}); serve one of them")
            self._models[served.name] = served
        return served

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._models)

    def get(self, name: str) -> Served:
        with self._lock:
            served = self._models.get(name)
        if served is None:
            raise ModelNotFound(name)
        return served

    @contextmanager
    def use(self, name: str) -> Iterator[Served]:
        with self._lock:
            served = self._models.get(name)
            if served is None:
                raise ModelNotFound(name)
            served.active += 1
        try:
            yield served
        finally:
            with self._lock:
                served.active -= 1
                done = served.retired and served.active == 0
            if done:
                served.plan.close()

    def swap(self, name: str, path: Path) -> Served:
        """Load `path` (outside the lock: serving goes on meanwhile) and make it model `name`.
        The bundle's plan must be `name`; ValueError says when it is not."""
        new = Served(self._loader(path), path)
        if new.name != name:
            new.plan.close()
            raise ValueError(f"bundle {path} holds plan '{new.name}', not '{name}'")
        with self._lock:
            old = self._models.get(name)
            self._models[name] = new
            close_now = old is not None and old.active == 0
            if old is not None:
                old.retired = True
        if old is not None:
            log.info("model '%s': %s -> %s", name, old.plan.sha256[:12], new.plan.sha256[:12])
        if close_now and old is not None:
            old.plan.close()
        return new

    def remove(self, name: str) -> None:
        """Stop serving `name`; its in-flight requests finish first (ModelNotFound if not served)."""
        with self._lock:
            served = self._models.pop(name, None)
            if served is None:
                raise ModelNotFound(name)
            served.retired = True
            close_now = served.active == 0
        if close_now:
            served.plan.close()

    def close(self) -> None:
        with self._lock:
            models, self._models = list(self._models.values()), {}
        for m in models:
            m.plan.close()
