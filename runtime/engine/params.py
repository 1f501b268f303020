"""The bundle's parameter archive: one IREE ParameterIndex over the mapped `.irpa`, shared by every module."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import iree.runtime as rt
import numpy as np
from planc.runtime.engine.modules import ModuleError

__all__ = ["Parameters", "aligned", "parameters_of"]


class Parameters:
    """Weights that modules load by name (`#stream.parameter.named<scope::key>`).

    The archive's bytes are wrapped, not copied: on a local (CPU) driver IREE imports each
    parameter straight from the mapped bundle file when it starts on a 64-byte boundary
    (the bundle writer aligns the member), so one copy serves every module and context.
    One io_parameters VM module is made per VM instance (one per driver) and reused."""

    def __init__(self, archive: Any, scope: str, keys: Sequence[str] = ()):
        self.scope = scope
        self._archive = archive = aligned(archive)  # keeps the bytes alive while IREE reads from them
        self.index = rt.ParameterIndex()
        try:
            self.index.load_from_file_handle(rt.FileHandle.wrap_memory(archive), "irpa")
        except (RuntimeError, ValueError) as e:
            raise ModuleError(f"the bundle's parameter archive cannot be read: {e}") from e
        have = {k for k, _ in self.index.items()}
        missing = sorted(set(keys) - have)
        if missing:
            raise ModuleError(f"the bundle's parameter archive lacks {len(missing)} parameter(s) its modules "
                              f"load, e.g. {missing[0]!r}")
        self._modules: dict[int, Any] = {}
        self._lock = threading.Lock()

    def module(self, instance: Any) -> Any:
        """The io_parameters module for one VM instance, made on first use."""
        with self._lock:
            hit = self._modules.get(id(instance))
            if hit is None:
                provider = self.index.create_provider(scope=self.scope)
                hit = self._modules[id(instance)] = (instance, rt.create_io_parameters_module(instance, provider))
            return hit[1]


ALIGN = 64  # IREE imports a parameter in place only from a 64-byte boundary; else every module copies it


def aligned(archive: Any) -> Any:
    """The archive where IREE can import its parameters in place: as it is when it starts on a 64-byte
    boundary (a member of a mapped bundle, a Ray object-store buffer), else copied once into memory that
    does (e.g. a `bytes` object, whose data starts 32 bytes into it), so modules do not copy it each."""
    view = np.frombuffer(archive, dtype=np.uint8)
    if view.size == 0 or view.ctypes.data % ALIGN == 0:
        return archive
    raw = np.empty(view.size + ALIGN, dtype=np.uint8)
    out = raw[-raw.ctypes.data % ALIGN:][:view.size]
    out[:] = view
    out.flags.writeable = False
    return out


def parameters_of(manifest: Mapping[str, Any], read: Any) -> Parameters | None:
    """The bundle's parameters (None when its modules load none); `read(path)` gives a member's bytes."""
    spec = manifest.get("parameters")
    if not spec:
        return None
    keys = sorted({k for m in manifest.get("modules", {}).values() for k in m.get("parameters", ())})
    return Parameters(read(spec["path"]), spec.get("scope", "planc"), keys)
