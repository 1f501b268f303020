"""Reading a bundle's members: a zip file mapped read-only, or a directory of files."""

from __future__ import annotations

import hashlib
import mmap
import os
import stat
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from planc.runtime.bundle.format import (
    ALIGNED_SUFFIX,
    MANIFEST,
    BundleError,
    BundleNotFound,
    HashMismatch,
    NotAFile,
    TruncatedBundle,
    UnsafePath,
    UnsupportedMember,
)

__all__ = ["DirSource", "ZipSource", "give_back"]


def _map(path: Path) -> mmap.mmap | bytes:
    """The file mapped read-only (an empty file as b"": mmap refuses length 0)."""
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            return b""
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)


_MAPPED = (ALIGNED_SUFFIX, ".vmfb")  # stored members held as views of the mapping, not copies


class ZipSource:
    """A zip bundle mapped read-only: small members are copied out and hashed, so the bytes verified are
    the bytes used; a stored parameter archive (`*.irpa`) stays a view of the mapping, hashed once here,
    so its weights are in memory once however many modules use them. (planc writes bundles by atomic
    rename, which leaves a mapped file as it was; a bundle rewritten in place while loaded is not.)"""

    def __init__(self, path: Path) -> None:
        try:
            data = _map(path)
        except (OSError, ValueError) as e:
            raise BundleNotFound(f"bundle {path} cannot be read: {getattr(e, 'strerror', None) or e}") from None
        self.path, self._data = path, data
        self._kept: list[tuple[int, int]] = []  # byte ranges of the archives IREE maps in place
        self.sha256 = hashlib.sha256(data).hexdigest()

    def open(self) -> None:
        path, data = self.path, self._data
        not_bundle = f"{path} is truncated or not a planc bundle"
        if data[:4] != b"PK\x03\x04":
            raise TruncatedBundle(f"{not_bundle} (it does not start with a zip member header)")
        try:
            self.zf = zipfile.ZipFile(_Reader(data))
            infos = self.zf.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError) as e:
            raise TruncatedBundle(f"{not_bundle} ({e})") from None
        for info in infos:
            _check_zip_entry(info)
        if infos and infos[0].header_offset != 0:
            raise TruncatedBundle(f"{not_bundle} (data precedes its first member)")
        end = data.rfind(b"PK\x05\x06")  # zip readers skip data after the end record; planrt does not
        if end < 0 or end + 22 + int.from_bytes(data[end + 20:end + 22], "little") != len(data):
            raise TruncatedBundle(f"{not_bundle} (data follows its end record)")
        self.names = [i.filename for i in infos]
        self.infos = {i.filename: i for i in infos}

    def read(self, name: str, cap: int) -> bytes:
        info = self.infos[name]
        if name.endswith(_MAPPED) and info.compress_type == zipfile.ZIP_STORED:
            return self._view(info, cap, keep=name.endswith(ALIGNED_SUFFIX))
        try:
            with self.zf.open(info) as f:
                return f.read(cap)
        except zipfile.BadZipFile as e:
            if "CRC" in str(e):
                raise HashMismatch(f"member {name!r} is damaged: its bytes fail the zip CRC-32 check",
                                   member=name) from None
            raise TruncatedBundle(f"member {name!r} cannot be read: {e} ({self.path} is truncated or "
                                  "not a planc bundle)", member=name) from None
        except (EOFError, OSError, ValueError, NotImplementedError, RuntimeError) as e:
            raise TruncatedBundle(f"member {name!r} cannot be read: {e} ({self.path} is truncated or "
                                  "not a planc bundle)", member=name) from None


    def release(self) -> None:
        """After verification: give back the pages of everything but the parameter archives (hashing
        touched every page; what planrt needs again it reads back from the page cache)."""
        if not isinstance(self._data, mmap.mmap) or not hasattr(mmap, "MADV_DONTNEED"):
            return
        page, pos = mmap.PAGESIZE, 0
        for start, end in [*sorted(self._kept), (len(self._data), len(self._data))]:
            lo, hi = -(-pos // page) * page, start // page * page
            if hi > lo:
                self._data.madvise(mmap.MADV_DONTNEED, lo, hi - lo)
            pos = max(pos, end)

    def _view(self, info: zipfile.ZipInfo, cap: int, keep: bool = False) -> Any:
        head = info.header_offset
        local = self._data[head:head + 30]
        if len(local) < 30 or local[:4] != b"PK\x03\x04":
            raise TruncatedBundle(f"member {info.filename!r} cannot be read: bad local header ({self.path} is "
                                  "truncated or not a planc bundle)", member=info.filename)
        start = head + 30 + int.from_bytes(local[26:28], "little") + int.from_bytes(local[28:30], "little")
        end = start + min(cap, info.compress_size)
        if keep:
            self._kept.append((start, end))
        return memoryview(self._data)[start:end]


def give_back(view: Any) -> None:
    """After a member was copied out of a mapped zip bundle: drop the mapping's pages that lie wholly
    inside it (copying touched them; a module's code is then in memory once, as IREE's copy)."""
    base = getattr(view, "obj", None)
    if not isinstance(base, mmap.mmap) or not hasattr(mmap, "MADV_DONTNEED") or len(view) == 0:
        return
    start = _address(view) - _address(base)
    page = mmap.PAGESIZE
    lo, hi = -(-start // page) * page, (start + len(view)) // page * page
    if hi > lo:
        base.madvise(mmap.MADV_DONTNEED, lo, hi - lo)


def _address(buf: Any) -> int:
    return np.frombuffer(buf, dtype=np.uint8).ctypes.data


class _Reader:
    """A seekable file over a mapping for zipfile (mmap has no `seekable`)."""

    def __init__(self, data: Any) -> None:
        self._data, self._pos = data, 0

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = 0) -> int:
        self._pos = max(0, pos + (0, self._pos, len(self._data))[whence])
        return self._pos

    def read(self, n: int = -1) -> bytes:
        end = len(self._data) if n is None or n < 0 else self._pos + n
        out = self._data[self._pos:end]
        self._pos += len(out)
        return bytes(out)


def _check_zip_entry(info: zipfile.ZipInfo) -> None:
    name = info.filename
    if not name:  # zipfile cuts a name at its first NUL byte: "\0evil" arrives as ""
        raise UnsafePath("unsafe member path '': a member has an empty name (or one that starts with a NUL "
                         "byte)", member="")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise NotAFile(f"member {name!r} is a symbolic link; bundles hold regular files only", member=name)
    if info.is_dir() or stat.S_ISDIR(mode) or info.external_attr & 0x10:
        raise NotAFile(f"member {name!r} is a directory entry; bundles hold regular files only", member=name)
    if mode and not stat.S_ISREG(mode):
        raise NotAFile(f"member {name!r} has file type {stat.S_IFMT(mode):o}; bundles hold regular files "
                       "only", member=name)
    if info.flag_bits & 0x1:
        raise UnsupportedMember(f"member {name!r} is encrypted", member=name)
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise UnsupportedMember(f"member {name!r} uses zip compression method {info.compress_type}; "
                                "planrt reads stored and deflated members", member=name)


class DirSource:
    """A directory bundle: every file under it is a member; links and special files are refused."""

    def __init__(self, root: Path) -> None:
        self.root = root
        files: list[str] = []
        self._walk(root, "", files)
        others = sorted(f for f in files if f != MANIFEST)
        self.names = [MANIFEST, *others] if MANIFEST in files else others

    def _walk(self, top: Path, prefix: str, files: list[str]) -> None:
        with os.scandir(top) as it:
            entries = sorted(it, key=lambda e: e.name)
        for e in entries:
            rel = prefix + e.name
            if e.is_symlink():
                raise NotAFile(f"member {rel!r} is a symbolic link; bundles hold regular files only",
                               member=rel)
            if e.is_dir(follow_symlinks=False):
                self._walk(Path(e.path), rel + "/", files)
            elif e.is_file(follow_symlinks=False):
                files.append(rel)
            else:
                raise NotAFile(f"member {rel!r} is not a regular file", member=rel)

    def read(self, name: str, cap: int) -> bytes:
        path = self.root.joinpath(*name.split("/"))
        if name.endswith(ALIGNED_SUFFIX) and not path.is_symlink():
            try:
                return memoryview(_map(path))[:cap]  # type: ignore[return-value]
            except (OSError, ValueError) as e:
                raise BundleError(f"member {name!r} cannot be read: {e}", member=name) from None
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            with os.fdopen(fd, "rb") as f:
                return f.read(cap)
        except OSError as e:
            raise BundleError(f"member {name!r} cannot be read: {e.strerror}", member=name) from None
