"""The bundle format shared by writer and loader: errors, member path rules, manifest codec, zip layout."""

from __future__ import annotations

import json
import re
import struct
import zlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, ClassVar

__all__ = [
    "ERROR_CODES",
    "MANIFEST",
    "SCHEMA_VERSIONS",
    "ZIP_LIMIT",
    "BadManifest",
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
    "check_member_paths",
    "decode_manifest",
    "encode_manifest",
    "path_problem",
    "validate_members_table",
    "zip_chunks",
]

SCHEMA_VERSIONS: tuple[int, ...] = (1,)
MANIFEST = "manifest.json"
ZIP_LIMIT = 0xFFFFFFFF  # classic zip fields; schema 1 never writes zip64
_SHA256 = re.compile(r"[0-9a-f]{64}")


class BundleError(Exception):
    """A bundle that cannot be trusted or read; `member` names the offending member when there is one."""

    code: ClassVar[str] = "B0000"
    title: ClassVar[str] = "bad bundle"

    def __init__(self, message: str, *, member: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.member = member

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "kind": type(self).__name__, "title": self.title,
                "member": self.member, "message": self.message}


class BundleNotFound(BundleError):
    code, title = "B0001", "bundle not found"


class TruncatedBundle(BundleError):
    code, title = "B0002", "truncated or not a planc bundle"


class BadManifest(BundleError):
    code, title = "B0003", "bad manifest"


class UnknownSchema(BundleError):
    code, title = "B0004", "unknown schema version"


class UnsafePath(BundleError):
    code, title = "B0005", "unsafe member path"


class NotAFile(BundleError):
    code, title = "B0006", "member is not a regular file"


class DuplicateMember(BundleError):
    code, title = "B0007", "duplicate member"


class HashMismatch(BundleError):
    code, title = "B0008", "member hash mismatch"


class SizeMismatch(BundleError):
    code, title = "B0009", "member size mismatch"


class MissingMember(BundleError):
    code, title = "B0010", "missing member"


class UnexpectedMember(BundleError):
    code, title = "B0011", "unexpected member"


class UnsupportedMember(BundleError):
    code, title = "B0012", "member stored in a way planrt does not read"


class DigestMismatch(BundleError):
    code, title = "B0013", "bundle is not the pinned one"


class ToolCallMismatch(BundleError):
    code, title = "B0014", "a tool call does not fit its python function"


ERROR_CODES: dict[str, str] = {c.code: c.title for c in (
    BundleError, BundleNotFound, TruncatedBundle, BadManifest, UnknownSchema, UnsafePath, NotAFile,
    DuplicateMember, HashMismatch, SizeMismatch, MissingMember, UnexpectedMember, UnsupportedMember,
    DigestMismatch, ToolCallMismatch)}

_DRIVE = re.compile(r"^[A-Za-z]:")


def path_problem(path: object) -> str | None:
    """Why `path` is not a safe member path, or None when it is (see docs/bundle.md, Members)."""
    if not isinstance(path, str) or not path:
        return "a member path must be a non-empty string"
    if path.startswith("/"):
        return "absolute paths are not allowed"
    if _DRIVE.match(path) or ":" in path:
        return "drive letters and ':' are not allowed"
    if "\\" in path:
        return "backslashes are not allowed (use '/')"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
        return "control characters are not allowed"
    for seg in path.split("/"):
        if seg in ("", ".", ".."):
            return f"empty, '.' and '..' segments are not allowed (found {seg!r})"
    return None


def check_member_paths(paths: Iterable[str]) -> None:
    """Raise UnsafePath or DuplicateMember for the first bad path in a bundle's member list."""
    seen: dict[str, str] = {}
    names = list(paths)
    for p in names:
        why = path_problem(p)
        if why is not None:
            raise UnsafePath(f"unsafe member path {p!r}: {why}", member=str(p))
        folded = p.casefold()
        if folded in seen:
            other = seen[folded]
            how = "twice" if other == p else f"twice, differing only in case from {other!r}"
            raise DuplicateMember(f"member {p!r} appears {how}", member=p)
        seen[folded] = p
    dirs = {p.casefold().rsplit("/", n)[0] for p in names for n in range(1, p.count("/") + 1)}
    for p in names:
        if p.casefold() in dirs:
            raise UnsafePath(f"unsafe member path {p!r}: it is both a file and a directory", member=p)


def encode_manifest(manifest: Mapping[str, Any]) -> bytes:
    """Canonical manifest bytes: UTF-8 JSON, sorted keys, 1-space indent, no NaN, trailing newline."""
    try:
        text = json.dumps(manifest, sort_keys=True, indent=1, ensure_ascii=False, allow_nan=False,
                          separators=(",", ": "))
    except (TypeError, ValueError) as e:
        raise ValueError(f"manifest cannot be written as canonical JSON: {e}") from None
    return (text + "\n").encode("utf-8")


def _no_constant(name: str) -> Any:
    raise BadManifest(f"{MANIFEST} contains {name}, which is not JSON", member=MANIFEST)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise BadManifest(f"{MANIFEST} has the key {k!r} twice in one object", member=MANIFEST)
        out[k] = v
    return out


def decode_manifest(data: bytes) -> dict[str, Any]:
    """Parse manifest bytes strictly: UTF-8, an object, no NaN/Infinity, no duplicate keys."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadManifest(f"{MANIFEST} is not UTF-8: {e}", member=MANIFEST) from None
    try:
        obj = json.loads(text, parse_constant=_no_constant, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as e:
        raise BadManifest(f"{MANIFEST} is not JSON: {e}", member=MANIFEST) from None
    if not isinstance(obj, dict):
        raise BadManifest(f"{MANIFEST} must hold a JSON object, found {type(obj).__name__}",
                          member=MANIFEST)
    return obj


def validate_members_table(manifest: Mapping[str, Any]) -> dict[str, tuple[str, int]]:
    """The manifest's `members` table as {path: (sha256, size)}; BadManifest/UnsafePath if malformed."""
    table = manifest.get("members")
    if not isinstance(table, list):
        raise BadManifest(f"{MANIFEST} has no 'members' list", member=MANIFEST)
    out: dict[str, tuple[str, int]] = {}
    for i, row in enumerate(table):
        if not isinstance(row, dict) or set(row) != {"path", "sha256", "size"}:
            raise BadManifest(f"{MANIFEST}: members[{i}] must be an object with exactly "
                              "'path', 'sha256' and 'size'", member=MANIFEST)
        path, digest, size = row["path"], row["sha256"], row["size"]
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise BadManifest(f"{MANIFEST}: members[{i}] ({path!r}) sha256 must be 64 lowercase hex digits",
                              member=MANIFEST)
        if type(size) is not int or size < 0:
            raise BadManifest(f"{MANIFEST}: members[{i}] ({path!r}) size must be a non-negative integer",
                              member=MANIFEST)
        if path == MANIFEST:
            raise BadManifest(f"{MANIFEST} must not list itself in 'members'", member=MANIFEST)
        out[str(path)] = (digest, size)
    check_member_paths([row["path"] for row in table])
    return out


# -- zip layout: stored members, fixed time 1980-01-01 00:00, mode 0644, UTF-8 names, no extra fields.
_VERSION = 20
_MADE_BY = (3 << 8) | _VERSION  # unix, so external attributes are a st_mode
_FLAGS = 0x0800  # names are UTF-8
_DOS_TIME, _DOS_DATE = 0, (0 << 9) | (1 << 5) | 1
_MODE = 0o100644 << 16


# Members whose data must start at a multiple of ALIGN in the file: IREE maps parameter archives
# in place only from 64-byte aligned memory (it copies them per module otherwise).
ALIGNED_SUFFIX = ".irpa"
ALIGN = 64
_PAD_ID = 0xD935  # the extra-field id Android's zipalign pads with


def _align_pad(name: str, data_offset: int) -> bytes:
    """The local header's extra field that puts an aligned member's data on an ALIGN boundary."""
    if not name.endswith(ALIGNED_SUFFIX):
        return b""
    n = -data_offset % ALIGN
    if n == 0:
        return b""
    if n < 4:  # an extra field is at least its 4-byte id and length
        n += ALIGN
    return struct.pack("<HH", _PAD_ID, n - 4) + bytes(n - 4)


def zip_chunks(entries: Iterable[tuple[str, bytes]]) -> Iterator[bytes]:
    """The bytes of a canonical zip of `entries` (in the given order), as chunks to write or hash."""
    central: list[bytes] = []
    offset = 0
    for name, data in entries:
        raw = name.encode("utf-8")
        crc = zlib.crc32(data)
        if len(data) >= ZIP_LIMIT or offset >= ZIP_LIMIT:
            raise ValueError(f"member {name!r} does not fit a schema-1 zip bundle (4 GiB limit); "
                             "write a directory bundle instead")
        pad = _align_pad(name, offset + 30 + len(raw))
        local = struct.pack("<IHHHHHIIIHH", 0x04034B50, _VERSION, _FLAGS, 0, _DOS_TIME, _DOS_DATE,
                            crc, len(data), len(data), len(raw), len(pad)) + raw + pad
        central.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, _MADE_BY, _VERSION, _FLAGS, 0,
                                   _DOS_TIME, _DOS_DATE, crc, len(data), len(data), len(raw), 0, 0, 0, 0,
                                   _MODE, offset) + raw)
        yield local
        yield data
        offset += len(local) + len(data)
    if len(central) >= 0xFFFF or offset >= ZIP_LIMIT:
        raise ValueError("bundle too large for a schema-1 zip; write a directory bundle instead")
    cd = b"".join(central)
    yield cd
    yield struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(central), len(central), len(cd), offset, 0)
