"""A content-addressed cache of compiled IREE modules, safe to share between processes."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Cache", "cache_key", "default_cache_dir", "onnx_store"]

log = logging.getLogger(__name__)

_SUFFIX = ".vmfb"


def default_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """`$PLANC_CACHE_DIR`, else `$XDG_CACHE_HOME/planc`, else `~/.cache/planc`."""
    env = os.environ if environ is None else environ
    if env.get("PLANC_CACHE_DIR"):
        return Path(env["PLANC_CACHE_DIR"])
    if env.get("XDG_CACHE_HOME"):
        return Path(env["XDG_CACHE_HOME"]) / "planc"
    return Path.home() / ".cache" / "planc"


def onnx_store() -> Cache:
    """Prepared ONNX models (compiler/models/onnx_prepare.py), beside the compiled modules."""
    return Cache(default_cache_dir() / "onnx")


def cache_key(mlir_text: str, flags: Sequence[str], iree_version: str) -> str:
    """sha256 over the StableHLO text, the compile flags and the IREE version.

    Each part is length-prefixed, so no two different inputs share an encoding.
    """
    h = hashlib.sha256(b"planc-module-cache-v1\0")
    for part in (iree_version, str(len(flags)), *flags, mlir_text):
        data = part.encode()
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


@dataclass(frozen=True, slots=True)
class Cache:
    """Compiled modules under `root/<key[:2]>/<key>.vmfb`.

    Writes go to a temporary file in the same directory, are flushed to disk and then
    renamed over the final name, so a reader (in any process) sees a whole entry or
    none; two processes writing the same key write the same bytes. Pass `None` where a
    `Cache | None` is expected to compile without a cache (`--no-cache`).
    """

    root: Path

    @classmethod
    def default(cls) -> Cache:
        return cls(default_cache_dir())

    def path(self, key: str) -> Path:
        if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
            raise ValueError(f"invalid cache key {key!r}: expected 64 lowercase hex digits")
        return Path(self.root) / key[:2] / (key + _SUFFIX)

    def get(self, key: str) -> bytes | None:
        try:
            data = self.path(key).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:
            log.warning("cache entry %s unreadable (%s); recompiling", key, e)
            return None
        return data or None  # an empty entry can only be damage: recompile

    def put(self, key: str, data: bytes) -> Path:
        final = self.path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{key[:16]}.", suffix=".tmp", dir=final.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, final)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return final

    def clear(self) -> int:
        """Removes every entry; returns how many."""
        n = 0
        for entry in Path(self.root).glob(f"??/*{_SUFFIX}"):
            entry.unlink(missing_ok=True)
            n += 1
        return n
