"""Write a bundle: the manifest's members table, then a canonical zip file or a directory, atomically."""

from __future__ import annotations

import copy
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from planc.runtime.bundle.format import (
    MANIFEST,
    SCHEMA_VERSIONS,
    BundleError,
    check_member_paths,
    encode_manifest,
    zip_chunks,
)

__all__ = ["build_manifest", "bundle_bytes_sha256", "write_atomic", "write_bundle", "write_bundle_dir"]


def build_manifest(manifest: Mapping[str, Any], members: Mapping[str, bytes]) -> dict[str, Any]:
    """A copy of `manifest` with its `members` table filled in (path, sha256, size; sorted by path).

    Module variants and tools must name members; a variant's `sha256`/`size` are filled in when absent
    and must agree when present. Raises ValueError naming the bad member or field.
    """
    if manifest.get("schema") not in SCHEMA_VERSIONS:
        raise ValueError(f"manifest schema {manifest.get('schema')!r} is not one planc writes "
                         f"({', '.join(map(str, SCHEMA_VERSIONS))})")
    if MANIFEST in members:
        raise ValueError(f"{MANIFEST!r} is written from the manifest; it cannot also be a member")
    for path, data in members.items():
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"member {path!r} must be bytes, not {type(data).__name__}")
    try:
        check_member_paths(members)
    except BundleError as e:
        raise ValueError(e.message) from None
    out = copy.deepcopy(dict(manifest))
    table = {p: {"path": p, "sha256": hashlib.sha256(members[p]).hexdigest(), "size": len(members[p])}
             for p in sorted(members)}
    out["members"] = list(table.values())
    for mod, m in out.get("modules", {}).items():
        for target, v in m.get("variants", {}).items():
            _fill_ref(f"module {mod!r} variant {target!r}", v, table)
            for c in v.get("candidates") or ():
                _fill_ref(f"module {mod!r} variant {target!r} candidate {c.get('name')!r}", c, table)
    for name, t in out.get("tools", {}).items():
        _fill_ref(f"tool {name!r}", t, table, fill=False)
    return out


def _fill_ref(who: str, ref: dict[str, Any], table: Mapping[str, Mapping[str, Any]], fill: bool = True) -> None:
    path = ref.get("path")
    if not isinstance(path, str) or path not in table:
        raise ValueError(f"{who} names member {path!r}, which is not among the bundle's members")
    for key in ("sha256", "size") if fill else ():
        if key in ref and ref[key] != table[path][key]:
            raise ValueError(f"{who}: {key} {ref[key]!r} does not match member {path!r} "
                             f"({table[path][key]!r})")
        ref[key] = table[path][key]


def _entries(manifest: dict[str, Any], members: Mapping[str, bytes]) -> list[tuple[str, bytes]]:
    return [(MANIFEST, encode_manifest(manifest)), *((p, bytes(members[p])) for p in sorted(members))]


def bundle_bytes_sha256(manifest: Mapping[str, Any], members: Mapping[str, bytes]) -> str:
    """The sha256 of the bundle file write_bundle would write, without writing it."""
    h = hashlib.sha256()
    for chunk in zip_chunks(_entries(build_manifest(manifest, members), members)):
        h.update(chunk)
    return h.hexdigest()


def write_bundle(path: str | os.PathLike[str], manifest: Mapping[str, Any],
                 members: Mapping[str, bytes]) -> str:
    """Write a bundle file atomically (temp file, fsync, rename) and return its sha256.

    The bytes depend only on `manifest` and `members`: `manifest.json` first, then members in sorted
    path order, stored, timestamps 1980-01-01 00:00, mode 0644, no extra fields.
    """
    target = Path(path)
    entries = _entries(build_manifest(manifest, members), members)
    return write_atomic(target, zip_chunks(entries))


def write_atomic(target: Path, chunks: Iterable[bytes]) -> str:
    """Write `chunks` to `target` atomically (temp file beside it, fsync, rename, fsync the folder);
    returns the sha256 of what was written."""
    h = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                h.update(chunk)
                f.write(chunk)
            f.flush()
            os.fchmod(f.fileno(), 0o644)
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)
    return h.hexdigest()


def write_bundle_dir(path: str | os.PathLike[str], manifest: Mapping[str, Any],
                     members: Mapping[str, bytes]) -> str:
    """Write the same bundle as a directory; return the sha256 its zip form would have.

    The directory is built beside `path` and renamed into place; an existing bundle directory there
    is replaced, anything else there is refused.
    """
    target = Path(path)
    entries = _entries(build_manifest(manifest, members), members)
    if target.exists() and not _replaceable(target):
        raise FileExistsError(f"{target} exists and is not a planc bundle directory; refusing to replace it")
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    h = hashlib.sha256()
    try:
        for chunk in zip_chunks(entries):
            h.update(chunk)
        for name, data in entries:
            _write_synced(tmp.joinpath(*name.split("/")), data)
        for d in sorted({p.parent for p in tmp.rglob("*")}, key=lambda p: -len(p.parts)):
            _fsync_dir(d)
        os.chmod(tmp, 0o755)
        _swap_in(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(target.parent)
    return h.hexdigest()


def _replaceable(target: Path) -> bool:
    if target.is_symlink() or not target.is_dir():
        return False
    return not any(target.iterdir()) or (target / MANIFEST).is_file()


def _swap_in(tmp: Path, target: Path) -> None:
    if not target.exists() or not any(target.iterdir()):
        os.replace(tmp, target)
        return
    old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".old"))
    os.replace(target, old)  # rename onto the empty placeholder
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)


def _write_synced(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    with open(path, "xb") as f:
        f.write(data)
        f.flush()
        os.fchmod(f.fileno(), 0o644)
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
