"""planrt: the minimal runtime (iree.runtime + numpy + stdlib only); `planc.runtime.load` embeds a bundle."""

from __future__ import annotations

from typing import Any

__all__ = ["Plan", "Result", "load"]


def __getattr__(name: str) -> Any:
    # Lazy: `import planc.runtime.bundle.format` (the compiler's bundle writer) stays free of IREE.
    if name in __all__:
        from planc.runtime import api

        return getattr(api, name)
    raise AttributeError(f"module 'planc.runtime' has no attribute {name!r}")
