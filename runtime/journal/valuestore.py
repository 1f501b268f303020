"""Value files of a run directory: content hashes, atomic durable writes, verified reads."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np

__all__ = [
    "Iteration",
    "IterationLike",
    "ValueFileError",
    "ValueRef",
    "atomic_write",
    "fsync_dir",
    "iteration_of",
    "iteration_text",
    "read_value",
    "value_sha256",
    "write_value",
]

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,199}")


Iteration: TypeAlias = tuple[int, ...]  # loop iteration path: () outside loops, (i,) in a loop
IterationLike: TypeAlias = "int | Sequence[int] | None"


def iteration_of(it: IterationLike) -> Iteration:
    """Normalize an iteration: None -> (), i -> (i,), a sequence -> a tuple of ints."""
    if it is None:
        return ()
    if isinstance(it, (int, np.integer)) and not isinstance(it, bool):
        return (int(it),)
    if isinstance(it, Sequence) and all(
        isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in it
    ):
        return tuple(int(i) for i in it)
    raise ValueError(f"bad loop iteration {it!r}: expected None, an int or a sequence of ints")


def iteration_text(it: IterationLike) -> str:
    """`''` outside loops, `'3'` or `'1.3'` inside: the suffix used in file names and keys."""
    return ".".join(map(str, iteration_of(it)))


class ValueFileError(ValueError):
    """A value cannot be stored, or a stored value file is missing or does not match its hash."""


def value_sha256(value: Any) -> str:
    """Content hash of a value: an array's dtype name, shape and C-order bytes, or canonical JSON."""
    h = hashlib.sha256()
    if isinstance(value, (np.ndarray, np.generic)):
        a = np.ascontiguousarray(value)
        if a.dtype.byteorder == ">":
            a = a.astype(a.dtype.newbyteorder("="))
        h.update(f"npy\0{a.dtype.name}\0{list(a.shape)}\0".encode())
        h.update(a.tobytes())
    else:
        h.update(b"json\0" + json.dumps(value, sort_keys=True, separators=(",", ":")).encode())
    return h.hexdigest()


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """fsync a directory so that entries created or renamed in it survive a crash."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike[str], data: bytes) -> None:
    """Write to a temp name, fsync it, rename over `path`, then fsync the directory."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(target.parent)


@dataclass(frozen=True, slots=True)
class ValueRef:
    """Where a value lives in a run directory (`file` relative to it) and its content hash."""

    file: str
    sha256: str
    kind: str  # "npy" | "json"
    dtype: str | None = None

    def to_json(self) -> dict[str, Any]:
        d = {"file": self.file, "sha256": self.sha256, "kind": self.kind}
        return d | ({"dtype": self.dtype} if self.dtype else {})

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ValueRef:
        try:
            return cls(str(d["file"]), str(d["sha256"]), str(d["kind"]), d.get("dtype"))
        except (KeyError, TypeError):
            raise ValueFileError(f"malformed value reference {d!r}") from None


def write_value(run: Path, name: str, iteration: IterationLike, value: Any) -> ValueRef:
    """Store `value` under `run/values/`: arrays and numpy scalars as .npy, anything else as JSON."""
    if not _NAME.fullmatch(name):
        raise ValueFileError(
            f"cannot store value {name!r}: expected a name of letters, digits, '_', '.', '-'"
        )
    it = iteration_text(iteration)
    stem = f"{name}@{it}" if it else name
    if isinstance(value, (np.ndarray, np.generic)):
        arr = np.asarray(value)
        if arr.dtype.hasobject:
            raise ValueFileError(f"cannot store value '{name}': object arrays are not supported")
        buf = io.BytesIO()
        np.save(buf, arr, allow_pickle=False)
        rel, data, kind, dtype = f"values/{stem}.npy", buf.getvalue(), "npy", arr.dtype.name
    else:
        try:
            data = json.dumps(value, sort_keys=True).encode()
        except (TypeError, ValueError) as e:
            raise ValueFileError(f"cannot store value '{name}': not an array and not JSON ({e})") from None
        rel, kind, dtype = f"values/{stem}.json", "json", None
    atomic_write(run / rel, data)
    return ValueRef(rel, value_sha256(value), kind, dtype)


def read_value(run: Path, ref: ValueRef) -> Any:
    """Load a value file and check it against its hash."""
    path = run / ref.file
    if ".." in Path(ref.file).parts or Path(ref.file).is_absolute():
        raise ValueFileError(f"value reference {ref.file!r} leaves the run directory")
    try:
        if ref.kind == "npy":
            value: Any = np.load(path, allow_pickle=False)
            if ref.dtype and value.dtype.name != ref.dtype:
                value = value.view(_extra_dtype(ref.dtype, ref.file))
        elif ref.kind == "json":
            value = json.loads(path.read_bytes())
        else:
            raise ValueFileError(f"value file {ref.file}: unknown kind {ref.kind!r}, expected npy or json")
    except FileNotFoundError:
        raise ValueFileError(f"value file {ref.file} is missing from {run}") from None
    except (OSError, ValueError) as e:
        if isinstance(e, ValueFileError):
            raise
        raise ValueFileError(f"value file {ref.file} cannot be read: {e}") from None
    found = value_sha256(value)
    if found != ref.sha256:
        raise ValueFileError(
            f"value file {ref.file} does not match its journal hash "
            f"(expected {ref.sha256[:16]}..., found {found[:16]}...)"
        )
    return value


def _extra_dtype(name: str, file: str) -> np.dtype[Any]:
    try:
        import ml_dtypes  # shipped with iree-base-runtime; numpy has no bfloat16 of its own

        return np.dtype(getattr(ml_dtypes, name))
    except (ImportError, AttributeError, TypeError):
        raise ValueFileError(f"value file {file}: dtype {name!r} is not available here") from None
