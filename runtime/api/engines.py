"""Which engine computes a run: the API names the factory, so the engine never imports Ray."""

from __future__ import annotations

from planc.runtime.bundle.loader import Bundle
from planc.runtime.engine.remote import ENGINES, RemoteEngine, RemoteFactory, check_engine

__all__ = ["ENGINES", "remote_factory"]


def _ray(bundle: Bundle, address: str | None) -> RemoteEngine:
    from planc.runtime.ray.engine import RayEngine  # lazy: Ray is an optional extra

    return RayEngine(bundle, address=address)


def remote_factory(engine: str) -> RemoteFactory | None:
    """The factory that opens `engine` (None for "local": IREE in this process)."""
    return {"local": None, "ray": _ray}[check_engine(engine)]
