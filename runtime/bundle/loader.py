"""Load a planc bundle (zip file or directory), verify every member against its manifest, unpack tools."""

from __future__ import annotations

import hashlib
import mmap
import os
import stat
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from planc.runtime.bundle.format import (
    ALIGNED_SUFFIX,
    MANIFEST,
    SCHEMA_VERSIONS,
    BadManifest,
    BundleError,
    BundleNotFound,
    DigestMismatch,
    DuplicateMember,
    HashMismatch,
    MissingMember,
    NotAFile,
    SizeMismatch,
    ToolCallMismatch,
    TruncatedBundle,
    UnexpectedMember,
    UnknownSchema,
    UnsafePath,
    UnsupportedMember,
    check_member_paths,
    decode_manifest,
    validate_members_table,
    zip_chunks,
)
from planc.runtime.bundle.schema import check_manifest
from planc.runtime.bundle.signature import SIGNATURE, Signer
from planc.runtime.bundle.signed import SignatureCheck, take_signature
from planc.runtime.bundle.summary import format_summary, summarize
from planc.runtime.bundle.toolcalls import check_tool_calls
from planc.runtime.contract.manifest import Manifest

from planc import __version__

if TYPE_CHECKING:
    from planc.runtime.bundle.trust import Trust

__all__ = [
    "SCHEMA_VERSIONS",
    "BadManifest",
    "Bundle",
    "BundleError",
    "BundleNotFound",
    "DigestMismatch",
    "DuplicateMember",
    "HashMismatch",
    "MissingMember",
    "NotAFile",
    "SizeMismatch",
    "ToolCallMismatch",
    "TruncatedBundle",
    "UnexpectedMember",
    "UnknownSchema",
    "UnsafePath",
    "UnsupportedMember",
    "format_summary",
    "load_bundle",
    "summarize",
]

_MANIFEST_CAP = 64 << 20  # a manifest larger than this is not one planc wrote
_TOOL_KINDS = ("exec", "python")


@dataclass(frozen=True)
class Bundle:
    """A verified bundle: its manifest, member bytes (already checked against the manifest) and sha256.

    `sha256` is the sha256 of the bundle file; for a directory bundle it is the sha256 of the zip
    file `planc` writes for the same content, so both forms of one bundle share one identity.
    """

    path: Path
    manifest: dict[str, Any]
    sha256: str
    is_dir: bool
    _members: Mapping[str, bytes] = field(repr=False)
    records: Manifest = field(repr=False, compare=False)  # the manifest as frozen records, built at load
    signer: Signer | None = None  # who signed; `verified` only when loaded with trusted keys

    @property
    def members(self) -> tuple[str, ...]:
        """Member paths (manifest.json excluded), sorted."""
        return tuple(sorted(self._members))

    def read(self, path: str) -> bytes:
        """The verified bytes of one member. A parameter archive (`*.irpa`) is a read-only memoryview of
        the mapped bundle file, not a copy; a module (`*.vmfb`) is copied out of the mapping when read,
        so the variants a host never loads cost it no memory."""
        try:
            data = self._members[path]
        except KeyError:
            raise MissingMember(f"bundle {self.path} has no member {path!r}", member=path) from None
        if isinstance(data, memoryview) and not path.endswith(ALIGNED_SUFFIX):
            return bytes(data)
        return data

    def size(self, path: str) -> int:
        try:
            return len(self._members[path])
        except KeyError:
            raise MissingMember(f"bundle {self.path} has no member {path!r}", member=path) from None

    def extract_tools(self, dest: str | os.PathLike[str]) -> dict[str, Path]:
        """Write every `tools/...` member under `dest` (mirroring member paths); exec tools get mode 0755.

        Returns each tool's name mapped to the path of its entry file. Nothing is executed.
        """
        root = Path(dest)
        root.mkdir(parents=True, exist_ok=True)
        root = root.resolve()
        tools = _tool_table(self.manifest)
        execs = {t["path"] for t in tools.values() if t["kind"] == "exec"}
        for name in self.members:
            if name.startswith("tools/"):
                _write_private(root, name, self._members[name], 0o755 if name in execs else 0o644)
        return {tool: root.joinpath(*t["path"].split("/")) for tool, t in sorted(tools.items())}


def _write_private(root: Path, name: str, data: bytes, mode: int) -> None:
    target = root.joinpath(*name.split("/"))
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.parent.resolve().is_relative_to(root):
        raise UnsafePath(f"refusing to extract {name!r}: {target.parent} leads outside {root}", member=name)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".planrt-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            os.fchmod(f.fileno(), mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_bundle(path: str | os.PathLike[str], *, sha256: str | None = None, trust: Trust | None = None) -> Bundle:
    """Open and verify a bundle file or directory; raise a BundleError subclass naming what is wrong.

    Checks, in order: the archive is readable; members are regular files with safe, unique paths;
    `manifest.json` comes first and is strict JSON; its schema is one this planrt reads; its
    `members` table matches the members exactly (no extra, none missing, same size and sha256);
    every module variant and tool the manifest names is a listed member; every call of a python
    tool fits its function's parameters.

    The bundle vouches only for itself: one rebuilt with a consistent manifest passes every check
    above. `sha256` pins the bundle's identity (what `planc compile` prints; a prefix of at least 12
    hex digits will do) and refuses any other bundle with DigestMismatch, before a zip is parsed.
    `trust` (`planc.runtime.bundle.trust.resolve_trust`) refuses a bundle that is unsigned, signed by
    another key, or changed after signing (docs/bundle.md, Signatures) before any member is trusted.
    """
    p = Path(path)
    pin = _pin(sha256)
    if p.is_dir():
        source: _Source = _DirSource(p)
    elif p.exists():
        source = _ZipSource(p)
        _check_pin(p, source.sha256, pin)
        source.open()
    else:
        raise BundleNotFound(f"bundle {p} does not exist")
    sig = take_signature(source, is_zip=isinstance(source, _ZipSource))
    check = SignatureCheck(sig, trust)
    check.before(lambda: source.read(MANIFEST, _MANIFEST_CAP) if MANIFEST in source.names else None)
    manifest, mbytes, members = check.verifying(lambda: _verify(source))
    if isinstance(source, _ZipSource):
        source.release()
        digest = source.sha256
    else:
        h = hashlib.sha256()
        signature = [(SIGNATURE, sig)] if sig is not None else []
        for chunk in zip_chunks([(MANIFEST, mbytes), *sorted(members.items()), *signature]):
            h.update(chunk)
        digest = h.hexdigest()
        _check_pin(p, digest, pin)
    return Bundle(p, manifest, digest, isinstance(source, _DirSource), members, Manifest.from_json(manifest),
                  check.signer())


def _pin(sha256: str | None) -> str | None:
    if sha256 is None:
        return None
    pin = sha256.strip().lower()
    if not 12 <= len(pin) <= 64 or any(c not in "0123456789abcdef" for c in pin):
        raise DigestMismatch(f"bad bundle digest {sha256!r}: expected 12 to 64 hex digits of its sha256")
    return pin


def _check_pin(path: Path, digest: str, pin: str | None) -> None:
    if pin is not None and not digest.startswith(pin):
        raise DigestMismatch(f"bundle {path} has sha256 {digest[:16]}..., not the pinned {pin[:16]}...: "
                             "it was modified or replaced")


class _Source(Protocol):
    names: list[str]

    def read(self, name: str, cap: int) -> bytes: ...


def _verify(source: _Source) -> tuple[dict[str, Any], bytes, dict[str, bytes]]:
    check_member_paths(source.names)
    if MANIFEST not in source.names:
        raise BadManifest(f"the bundle has no {MANIFEST}", member=MANIFEST)
    if source.names[0] != MANIFEST:
        raise BadManifest(f"{MANIFEST} must be the bundle's first member; found {source.names[0]!r} first",
                          member=MANIFEST)
    mbytes = source.read(MANIFEST, _MANIFEST_CAP)
    manifest = decode_manifest(mbytes)
    _check_schema(manifest)
    table = validate_members_table(manifest)
    _check_references(manifest, table)
    check_manifest(manifest)
    present = source.names[1:]
    extra = [n for n in present if n not in table]
    if extra:
        more = f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""
        raise UnexpectedMember(f"member {extra[0]!r}{more} is not listed in {MANIFEST}", member=extra[0])
    missing = sorted(set(table) - set(present))
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise MissingMember(f"member {missing[0]!r}{more} is listed in {MANIFEST} but not in the bundle",
                            member=missing[0])
    members: dict[str, bytes] = {}
    for name in sorted(table):
        digest, size = table[name]
        data = source.read(name, size + 1)
        if len(data) != size:
            got = f"at least {size + 1}" if len(data) > size else str(len(data))
            raise SizeMismatch(f"member {name!r} is {got} bytes; {MANIFEST} says {size}", member=name)
        actual = hashlib.sha256(data).hexdigest()
        if actual != digest:
            raise HashMismatch(f"member {name!r} has sha256 {actual[:16]}...; {MANIFEST} says "
                               f"{digest[:16]}... (the bundle was modified or damaged)", member=name)
        members[name] = data
    check_tool_calls(manifest, members)
    return manifest, mbytes, members


def _check_schema(manifest: Mapping[str, Any]) -> None:
    schema = manifest.get("schema")
    if type(schema) is int and schema in SCHEMA_VERSIONS:
        return
    versions = manifest.get("versions")
    writer = versions.get("planc") if isinstance(versions, dict) else None
    by = f" (written by planc {writer})" if isinstance(writer, str) else ""
    supported = ", ".join(map(str, SCHEMA_VERSIONS))
    what = "has no 'schema'" if schema is None else f"says schema {schema!r}"
    raise UnknownSchema(f"{MANIFEST} {what}{by}; this planrt ({__version__}) reads schema {supported}; "
                        "use a planrt that matches the planc that wrote it", member=MANIFEST)


def _tool_table(manifest: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    tools = manifest.get("tools", {})
    if not isinstance(tools, dict):
        raise BadManifest(f"{MANIFEST}: 'tools' must be an object", member=MANIFEST)
    for name, t in tools.items():
        if not isinstance(t, dict) or t.get("kind") not in _TOOL_KINDS or not isinstance(t.get("path"), str):
            raise BadManifest(f"{MANIFEST}: tool {name!r} needs 'kind' (one of: {', '.join(_TOOL_KINDS)}) "
                              "and a 'path'", member=MANIFEST)
        if not t["path"].startswith("tools/"):
            raise BadManifest(f"{MANIFEST}: tool {name!r} path {t['path']!r} must lie under 'tools/'",
                              member=MANIFEST)
    return tools


def _variants(manifest: Mapping[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    modules = manifest.get("modules", {})
    if not isinstance(modules, dict):
        raise BadManifest(f"{MANIFEST}: 'modules' must be an object", member=MANIFEST)
    out = []
    for mod, m in modules.items():
        variants = m.get("variants") if isinstance(m, dict) else None
        if not isinstance(variants, dict):
            raise BadManifest(f"{MANIFEST}: module {mod!r} needs a 'variants' object", member=MANIFEST)
        for target, v in variants.items():
            if not isinstance(v, dict) or not isinstance(v.get("path"), str):
                raise BadManifest(f"{MANIFEST}: module {mod!r} variant {target!r} needs a 'path'",
                                  member=MANIFEST)
            out.append((mod, target, v))
    return out


def _check_references(manifest: Mapping[str, Any], table: Mapping[str, tuple[str, int]]) -> None:
    refs = [(f"module {m!r} variant {t!r}", v) for m, t, v in _variants(manifest)]
    refs += [(f"tool {name!r}", t) for name, t in _tool_table(manifest).items()]
    params = manifest.get("parameters")
    if params is not None:
        if not isinstance(params, dict) or not isinstance(params.get("path"), str):
            raise BadManifest(f"{MANIFEST}: 'parameters' needs a 'path'", member=MANIFEST)
        refs.append(("the parameter archive", params))
    for who, ref in refs:
        path = ref["path"]
        if path not in table:
            raise MissingMember(f"{who} names member {path!r}, which {MANIFEST}'s members table does not "
                                "list", member=path)
        digest, size = table[path]
        if ref.get("sha256", digest) != digest or ref.get("size", size) != size:
            raise HashMismatch(f"{who} records a different sha256 or size for {path!r} than the members "
                               "table", member=path)


def _map(path: Path) -> mmap.mmap | bytes:
    """The file mapped read-only (an empty file as b"": mmap refuses length 0)."""
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            return b""
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)


_MAPPED = (ALIGNED_SUFFIX, ".vmfb")  # stored members held as views of the mapping, not copies


class _ZipSource:
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


class _DirSource:
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
