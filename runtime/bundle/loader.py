"""Load a planc bundle (zip file or directory), verify every member against its manifest, unpack tools."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from planc.runtime.bundle.candidates import candidates as _candidates
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
from planc.runtime.bundle.sources import DirSource, ZipSource, give_back
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
            out = bytes(data)
            give_back(data)
            return out
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
        source: _Source = DirSource(p)
    elif p.exists():
        source = ZipSource(p)
        _check_pin(p, source.sha256, pin)
        source.open()
    else:
        raise BundleNotFound(f"bundle {p} does not exist")
    sig = take_signature(source, is_zip=isinstance(source, ZipSource))
    check = SignatureCheck(sig, trust)
    check.before(lambda: source.read(MANIFEST, _MANIFEST_CAP) if MANIFEST in source.names else None)
    manifest, mbytes, members = check.verifying(lambda: _verify(source))
    if isinstance(source, ZipSource):
        source.release()
        digest = source.sha256
    else:
        h = hashlib.sha256()
        signature = [(SIGNATURE, sig)] if sig is not None else []
        for chunk in zip_chunks([(MANIFEST, mbytes), *sorted(members.items()), *signature]):
            h.update(chunk)
        digest = h.hexdigest()
        _check_pin(p, digest, pin)
    return Bundle(p, manifest, digest, isinstance(source, DirSource), members, Manifest.from_json(manifest),
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
    refs += [(f"module {m!r} variant {t!r} candidate {c.get('name')!r}", c)
             for m, t, v in _variants(manifest) for c in _candidates(m, t, v)]
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
