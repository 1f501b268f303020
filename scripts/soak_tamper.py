"""Tamperers of the bundle soak: each takes a good bundle's members and returns the bytes of a damaged one."""

from __future__ import annotations

import copy
import hashlib
import json
import random
import stat
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from typing import Any

from planc.runtime.bundle.format import MANIFEST, encode_manifest, zip_chunks
from planc.runtime.bundle.signature import SIGNATURE

__all__ = ["BOMB_BYTES", "TAMPERS", "Good", "Tampered"]


@dataclass(frozen=True)
class Good:
    """A good bundle taken apart: its file bytes, its members in order, and its manifest; a signed
    bundle's signature is kept aside, and every rebuilt bundle carries it at its end again (the
    attacker keeps the signature, hoping it still verifies)."""

    data: bytes
    entries: tuple[tuple[str, bytes], ...]
    manifest: dict[str, Any]
    signature: bytes | None = None

    @classmethod
    def parse(cls, data: bytes) -> Good:
        with zipfile.ZipFile(BytesIO(data)) as zf:
            entries = tuple((i.filename, zf.read(i)) for i in zf.infolist())
        signature = entries[-1][1] if entries[-1][0] == SIGNATURE else None
        entries = entries[:-1] if signature is not None else entries
        return cls(data, entries, json.loads(entries[0][1]), signature)

    def signed(self, entries: list[tuple[Any, bytes]]) -> list[tuple[Any, bytes]]:
        return [*entries, (SIGNATURE, self.signature)] if self.signature is not None else entries


@dataclass(frozen=True)
class Tampered:
    """A damaged bundle; `consistent` marks a re-hashed edit that no hash inside the bundle can reveal."""

    data: bytes
    what: str
    consistent: bool = False


def _zip(g: Good, entries: list[tuple[Any, bytes]], compression: int = zipfile.ZIP_STORED) -> bytes:
    entries = g.signed(entries)
    buf = BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are written on purpose
        with zipfile.ZipFile(buf, "w", compression) as zf:
            for name, data in entries:
                if not isinstance(name, zipfile.ZipInfo):
                    name = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                    name.external_attr = (stat.S_IFREG | 0o644) << 16
                zf.writestr(name, data, compress_type=compression)
    return buf.getvalue()


def _canonical(g: Good, entries: list[tuple[str, bytes]]) -> bytes:
    return b"".join(zip_chunks(g.signed(entries)))


def _table(members: dict[str, bytes]) -> list[dict[str, Any]]:
    return [{"path": p, "sha256": hashlib.sha256(d).hexdigest(), "size": len(d)} for p, d in sorted(members.items())]


def _rehash(manifest: dict[str, Any], members: dict[str, bytes], refs: bool) -> dict[str, Any]:
    """The members table (and, with `refs`, every variant's sha256 and size) recomputed for `members`."""
    m = copy.deepcopy(manifest)
    m["members"] = _table(members)
    for mod in m.get("modules", {}).values() if refs else ():
        for v in mod.get("variants", {}).values():
            if refs and v.get("path") in members:
                v["sha256"], v["size"] = hashlib.sha256(members[v["path"]]).hexdigest(), len(members[v["path"]])
    return m


def bit_flips(g: Good, rng: random.Random) -> Tampered:
    data = bytearray(g.data)
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(len(data))
        data[i] ^= 1 << rng.randrange(8)
    return Tampered(bytes(data), "bit flips")


def byte_runs(g: Good, rng: random.Random) -> Tampered:
    data = bytearray(g.data)
    i = rng.randrange(len(data))
    n = rng.randint(1, 64)
    data[i:i + n] = bytes(rng.randrange(256) for _ in range(min(n, len(data) - i)))
    return Tampered(bytes(data), "overwritten bytes")


def truncation(g: Good, rng: random.Random) -> Tampered:
    cut = rng.choice([rng.randrange(len(g.data)), len(g.data) - rng.randint(1, 200), rng.randint(0, 64)])
    return Tampered(g.data[:max(0, cut)], "truncated")


def extra_bytes(g: Good, rng: random.Random) -> Tampered:
    junk = rng.randbytes(rng.randint(1, 512))
    if rng.random() < 0.5:
        return Tampered(g.data + junk, "data appended")
    return Tampered(g.data[:4] + junk + g.data, "data prepended")


def swapped_members(g: Good, rng: random.Random) -> Tampered:
    entries = list(g.entries)
    i, j = rng.sample(range(len(entries)), 2)
    if rng.random() < 0.5:  # contents swapped, names kept
        (a, da), (b, db) = entries[i], entries[j]
        entries[i], entries[j] = (a, db), (b, da)
        what = "member contents swapped"
    else:  # order swapped
        entries[i], entries[j] = entries[j], entries[i]
        what = "member order swapped"
        # The same members in another order are the same bundle unless the manifest moves from the front.
        return Tampered(_canonical(g, entries), what, consistent=0 not in (i, j))
    return Tampered(_canonical(g, entries), what, consistent=entries[i][1] == entries[j][1])


def _edit_member(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data or b"\0")
    op = rng.randrange(3)
    if op == 0:
        b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    elif op == 1:
        b += b"\n#!/bin/sh\necho pwned\n"
    else:
        del b[rng.randrange(len(b)):]
    return bytes(b)


def member_edit(g: Good, rng: random.Random) -> Tampered:
    """One member changed (a module, a tool script, an MLIR file); re-zipped with a valid CRC.

    Levels of cover-up: none; the members table re-hashed; the table and every variant re-hashed
    (then the bundle is consistent again and only a pinned digest tells it apart).
    """
    members = dict(g.entries[1:])
    name = rng.choice(sorted(members))
    members[name] = _edit_member(members[name], rng)
    level = rng.randrange(3)
    manifest = g.manifest if level == 0 else _rehash(g.manifest, members, refs=level == 2)
    entries = [(MANIFEST, encode_manifest(manifest)), *sorted(members.items())]
    # Tools and MLIR files carry no hash of their own beyond the table's: a re-hashed table covers them.
    variant_paths = {v.get("path") for mod in manifest.get("modules", {}).values()
                     for v in mod.get("variants", {}).values()}
    consistent = level == 2 or (level == 1 and name not in variant_paths)
    how = ("", ", members table re-hashed", ", table and variants re-hashed")[level]
    return Tampered(_canonical(g, entries), f"member {name} edited{how}", consistent)


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


_ODD = [None, True, False, 0, -1, 1.5, 2**63, "", "x", "../../etc/passwd", [], {}, [1], {"a": 1}, "1" * 10000]


def manifest_edit(g: Good, rng: random.Random) -> Tampered:
    """A value, key or list item of the manifest changed, dropped or retyped; sometimes re-hashed after."""
    m = copy.deepcopy(g.manifest)
    paths = _paths(m)
    for _ in range(rng.randint(1, 3)):
        path = rng.choice(paths)
        parent = m
        try:
            for k in path[:-1]:
                parent = parent[k]
            key = path[-1]
            old = parent[key]
        except (KeyError, IndexError, TypeError):
            continue
        op = rng.randrange(4)
        if op == 0:
            del parent[key]
        elif op == 1:
            parent[key] = rng.choice(_ODD)
        elif op == 2 and isinstance(old, (int, float)) and not isinstance(old, bool):
            parent[key] = old + rng.choice([-1, 1, 1000])
        elif op == 3 and isinstance(old, str) and old:
            parent[key] = rng.choice([old[:-1], old + "x", old.upper(), "tools/" + old])
        else:
            parent[key] = copy.deepcopy(rng.choice(paths) and old)
    rehash = rng.random() < 0.5
    if rehash and isinstance(m.get("members"), list):
        m["members"] = _table(dict(g.entries[1:]))
    try:
        text = encode_manifest(m)
    except ValueError:
        text = json.dumps(m).encode()
    entries = [(MANIFEST, text), *g.entries[1:]]
    return Tampered(_canonical(g, entries), "manifest edited" + (", members re-hashed" if rehash else ""),
                    consistent=True)  # an edit that keeps the manifest well-formed is a different bundle


def _mode_info(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.external_attr = mode << 16
    return info


_EVIL = ["../evil", "/tmp/evil", "tools/../../evil", "a\\..\\evil", "C:/evil", "tools//x", "./tools/x",
         "tools/x/.", "..", "tools/notify/../../../evil", "\x00evil", "tools/\nevil", "MANIFEST.JSON"]


def path_traversal(g: Good, rng: random.Random) -> Tampered:
    name = rng.choice(_EVIL)
    entries = [*g.entries, (name, b"#!/bin/sh\ntouch pwned\n")]
    if rng.random() < 0.5:  # listed in the table too, so only the path rule stops it
        members = {**dict(g.entries[1:]), name: entries[-1][1]}
        m = g.manifest | {"members": _table(members)}
        entries[0] = (MANIFEST, encode_manifest(m))
    return Tampered(_zip(g, entries), f"member path {name!r}")


def special_member(g: Good, rng: random.Random) -> Tampered:
    kind = rng.choice(["symlink", "dir", "fifo", "chardev"])
    mode = {"symlink": stat.S_IFLNK | 0o777, "dir": stat.S_IFDIR | 0o755, "fifo": stat.S_IFIFO | 0o644,
            "chardev": stat.S_IFCHR | 0o644}[kind]
    entries: list[tuple[Any, bytes]] = list(g.entries)
    if rng.random() < 0.5:  # an existing member becomes the special file
        i = rng.randrange(1, len(entries))
        name, data = entries[i]
        entries[i] = (_mode_info(name, mode), b"/etc/passwd" if kind == "symlink" else data)
    else:
        entries.append((_mode_info("tools/link", mode), b"/etc/passwd"))
    return Tampered(_zip(g, entries), f"{kind} member")


def oversized(g: Good, rng: random.Random) -> Tampered:
    members = dict(g.entries[1:])
    name = rng.choice(sorted(members))
    members[name] += bytes(rng.randint(1, 1 << 20))
    return Tampered(_canonical(g, [g.entries[0], *sorted(members.items())]), f"member {name} grown")


def zip_bomb(g: Good, rng: random.Random) -> Tampered:
    """A member that inflates to 64 MiB from a few hundred KiB; the table lists its real size or not."""
    name = rng.choice([n for n, _ in g.entries[1:3]])  # a few members only: each bomb is built once
    honest = rng.random() < 0.5
    return Tampered(_bomb(g, name, honest), f"zip bomb in {name}" + (" (size listed)" if honest else ""),
                    consistent=honest)


BOMB_BYTES = 64 << 20  # what a zip bomb inflates to (soak.py --small uses less)
_bombs: dict[tuple[int, str, bool], bytes] = {}


def _bomb(g: Good, name: str, honest: bool) -> bytes:
    key = (id(g), name, honest)
    if key not in _bombs:
        members = {**dict(g.entries[1:]), name: bytes(BOMB_BYTES)}
        m = _rehash(g.manifest, members, refs=False) if honest else g.manifest
        _bombs[key] = _zip(g, [(MANIFEST, encode_manifest(m)), *sorted(members.items())], zipfile.ZIP_DEFLATED)
    return _bombs[key]


def duplicate_member(g: Good, rng: random.Random) -> Tampered:
    name, data = rng.choice(g.entries)
    other = name.upper() if rng.random() < 0.5 else name
    return Tampered(_zip(g, [*g.entries, (other, _edit_member(data, rng))]), f"member {name} twice")


def compression(g: Good, rng: random.Random) -> Tampered:
    method = rng.choice([zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
    return Tampered(_zip(g, list(g.entries), method), f"compression method {method}")


TAMPERS: dict[str, Callable[[Good, random.Random], Tampered]] = {
    "bit-flips": bit_flips, "byte-runs": byte_runs, "truncation": truncation, "extra-bytes": extra_bytes,
    "swapped": swapped_members, "member-edit": member_edit, "manifest-edit": manifest_edit,
    "traversal": path_traversal, "special": special_member, "oversized": oversized, "zip-bomb": zip_bomb,
    "duplicate": duplicate_member, "compression": compression,
}
