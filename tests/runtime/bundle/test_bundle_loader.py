"""The bundle loader: good bundles load, and every kind of bad bundle is refused with its own error."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path
from typing import Any

import pytest
from planc.runtime.bundle.format import ERROR_CODES
from planc.runtime.bundle.loader import (
    BadManifest,
    BundleError,
    BundleNotFound,
    DuplicateMember,
    HashMismatch,
    MissingMember,
    NotAFile,
    SizeMismatch,
    TruncatedBundle,
    UnexpectedMember,
    UnknownSchema,
    UnsafePath,
    UnsupportedMember,
    load_bundle,
    summarize,
)

VMFB = "modules/g0/x86_64-avx2.vmfb"
VMFB_DATA = bytes(range(256)) * 40
MEMBERS = {
    VMFB: VMFB_DATA,
    "mlir/g0.mlir": b"module {}\n",
    "tools/notify/notify.sh": b"#!/bin/sh\ncat\n",
    "tools/py/tools.py": b"def f(x):\n    return x\n",
}


def manifest_for(members: dict[str, bytes], **over: Any) -> dict[str, Any]:
    m: dict[str, Any] = {
        "schema": 1, "plan": "demo", "versions": {"planc": "0.1.0", "iree": "3.13.0"},
        "objective": "latency", "targets": ["x86_64-avx2"],
        "inputs": [{"name": "frame", "dtype": "f32", "shape": [1, 8]}],
        "outputs": [{"name": "y", "value": "y"}, {"name": "loud", "value": "alert"}],
        "tasks": [
            {"name": "y", "kind": "compute", "module": "g0", "args": ["frame"], "results": ["y"]},
            {"name": "worst", "kind": "builtin", "op": "max", "args": ["y"], "results": ["worst"]},
            {"name": "polish", "kind": "loop", "max": 3, "until": {"ref": "worst"}, "carries": [],
             "results": ["z"], "body": [{"name": "z", "kind": "builtin", "op": "sum", "args": ["y"],
                                         "results": ["z"]}]},
            {"name": "alert", "kind": "tool", "tool": "notify", "args": ["worst"], "results": ["alert"]},
        ],
        "modules": {"g0": {"inputs": [{"dtype": "f32", "shape": [1, 8]}],
                           "outputs": [{"dtype": "f32", "shape": [1, 8]}], "members": ["y"],
                           "variants": {"x86_64-avx2": {"path": VMFB, "backend": "llvm-cpu",
                                                        "driver": "local-task"}}}},
        "tools": {"notify": {"kind": "exec", "path": "tools/notify/notify.sh"},
                  "py": {"kind": "python", "path": "tools/py/tools.py", "function": "f"}},
        "schedules": {"cpu": {"devices": ["cpu0"], "placement": {"g0": "cpu0", "worst": "cpu0"},
                              "order": ["g0", "worst", "polish", "alert"], "makespan": 0.0015}},
        "members": [{"path": p, "sha256": hashlib.sha256(d).hexdigest(), "size": len(d)}
                    for p, d in sorted(members.items())],
    }
    m.update(over)
    return m


def zinfo(name: str, mode: int = stat.S_IFREG | 0o644) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.external_attr = mode << 16
    return info


def make_zip(path: Path, entries: list[tuple[str | zipfile.ZipInfo, bytes]],
             compression: int = zipfile.ZIP_STORED) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate names we write on purpose
        with zipfile.ZipFile(path, "w", compression) as zf:
            for name, data in entries:
                zf.writestr(name if isinstance(name, zipfile.ZipInfo) else zinfo(name), data,
                            compress_type=compression)
    return path


def good_entries(members: dict[str, bytes] | None = None, **over: Any) -> list[tuple[Any, bytes]]:
    members = MEMBERS if members is None else members
    manifest = json.dumps(manifest_for(members, **over)).encode()
    return [("manifest.json", manifest), *sorted(members.items())]


def refused(path: Path, cls: type[BundleError], member: str | None) -> BundleError:
    with pytest.raises(cls) as info:
        load_bundle(path)
    err = info.value
    assert type(err) is cls
    if member is not None:
        assert err.member == member
        assert repr(member) in str(err) or member in str(err)
    return err


def test_good_bundle_loads_and_reads(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "ok.planb", good_entries())
    b = load_bundle(path)
    assert b.manifest["plan"] == "demo"
    assert b.members == tuple(sorted(MEMBERS))
    assert all(b.read(p) == d for p, d in MEMBERS.items())
    assert b.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert not b.is_dir
    with pytest.raises(MissingMember, match="nope"):
        b.read("nope")


def test_deflated_members_from_other_zip_tools_load(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "d.planb", good_entries(), zipfile.ZIP_DEFLATED)
    assert path.stat().st_size < len(VMFB_DATA)
    assert load_bundle(path).read(VMFB) == VMFB_DATA


@pytest.mark.parametrize("cut", [0, 1, 4, 30, 0.5, -23, -22, -1])
def test_truncated_file(tmp_path: Path, cut: float) -> None:
    data = make_zip(tmp_path / "ok.planb", good_entries()).read_bytes()
    n = int(len(data) * cut) if isinstance(cut, float) else (cut if cut >= 0 else len(data) + cut)
    bad = tmp_path / "cut.planb"
    bad.write_bytes(data[:n])
    err = refused(bad, TruncatedBundle, None)
    assert "truncated or not a planc bundle" in str(err)


def test_not_a_zip_and_prepended_data(tmp_path: Path) -> None:
    text = tmp_path / "t.planb"
    text.write_text("plan demo {}\n")
    assert "truncated or not a planc bundle" in str(refused(text, TruncatedBundle, None))
    ok = make_zip(tmp_path / "ok.planb", good_entries()).read_bytes()
    poly = tmp_path / "poly.planb"
    poly.write_bytes(ok[:4] + b"#!/bin/sh\nrm -rf /\n" + ok)  # zip readers tolerate leading data
    refused(poly, TruncatedBundle, None)


def test_missing_bundle(tmp_path: Path) -> None:
    refused(tmp_path / "absent.planb", BundleNotFound, None)


def test_flipped_byte_in_module_fails_crc(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "ok.planb", good_entries())
    data = bytearray(path.read_bytes())
    at = bytes(data).index(VMFB_DATA) + 1000
    data[at] ^= 0x01
    path.write_bytes(bytes(data))
    refused(path, HashMismatch, VMFB)


def test_member_with_other_content_than_manifest_says(tmp_path: Path) -> None:
    entries = good_entries()
    entries = [(n, VMFB_DATA[::-1] if n == VMFB else d) for n, d in entries]  # same size, valid CRC
    err = refused(make_zip(tmp_path / "b.planb", entries), HashMismatch, VMFB)
    assert "sha256" in str(err)
    entries = [(n, d + b"x" if n == VMFB else d) for n, d in good_entries()]
    refused(make_zip(tmp_path / "s.planb", entries), SizeMismatch, VMFB)


@pytest.mark.parametrize("schema", [2, 0, "1", True, None])
def test_unknown_schema(tmp_path: Path, schema: object) -> None:
    entries = good_entries(schema=schema)
    err = refused(make_zip(tmp_path / "s.planb", entries), UnknownSchema, "manifest.json")
    assert "reads schema 1" in str(err)
    assert "planc 0.1.0" in str(err)


@pytest.mark.parametrize("name", ["../evil", "/etc/evil", "tools/../../evil", "a\\..\\evil", "C:/evil",
                                  "tools//x", "./tools/x", "tools/x/."])
def test_unsafe_member_path(tmp_path: Path, name: str) -> None:
    members = {**MEMBERS, name: b"boom"}
    refused(make_zip(tmp_path / "u.planb", good_entries(members)), UnsafePath, name)


def test_symlink_member(tmp_path: Path) -> None:
    link = zinfo("tools/notify/link", stat.S_IFLNK | 0o777)
    entries = [*good_entries(), (link, b"/etc/passwd")]
    refused(make_zip(tmp_path / "l.planb", entries), NotAFile, "tools/notify/link")


def test_directories_are_not_members(tmp_path: Path) -> None:
    entries = [*good_entries(), (zinfo("tools/", stat.S_IFDIR | 0o755), b"")]
    refused(make_zip(tmp_path / "d.planb", entries), NotAFile, "tools/")
    posing = zinfo("tools/dir", stat.S_IFDIR | 0o755)  # a directory with a file's name
    refused(make_zip(tmp_path / "p.planb", [*good_entries(), (posing, b"")]), NotAFile, "tools/dir")
    fifo = zinfo("tools/fifo", stat.S_IFIFO | 0o644)
    refused(make_zip(tmp_path / "f.planb", [*good_entries(), (fifo, b"")]), NotAFile, "tools/fifo")


def test_file_and_directory_with_one_name(tmp_path: Path) -> None:
    members = {**MEMBERS, "tools/notify": b"x"}
    refused(make_zip(tmp_path / "fd.planb", good_entries(members)), UnsafePath, "tools/notify")


def test_missing_member(tmp_path: Path) -> None:
    entries = [e for e in good_entries() if e[0] != "mlir/g0.mlir"]
    refused(make_zip(tmp_path / "m.planb", entries), MissingMember, "mlir/g0.mlir")


def test_manifest_names_an_unlisted_variant(tmp_path: Path) -> None:
    members = {p: d for p, d in MEMBERS.items() if p != VMFB}
    refused(make_zip(tmp_path / "v.planb", good_entries(members)), MissingMember, VMFB)


def test_unexpected_member(tmp_path: Path) -> None:
    entries = [*good_entries(), ("tools/notify/extra.sh", b"#!/bin/sh\n")]
    refused(make_zip(tmp_path / "x.planb", entries), UnexpectedMember, "tools/notify/extra.sh")


def test_duplicate_member(tmp_path: Path) -> None:
    entries = [*good_entries(), (VMFB, VMFB_DATA)]
    refused(make_zip(tmp_path / "dup.planb", entries), DuplicateMember, VMFB)
    upper = [*good_entries(), ("MLIR/g0.mlir", b"module {}\n")]
    err = refused(make_zip(tmp_path / "case.planb", upper), DuplicateMember, "MLIR/g0.mlir")
    assert "case" in str(err)


def test_manifest_not_first(tmp_path: Path) -> None:
    entries = good_entries()
    err = refused(make_zip(tmp_path / "nf.planb", [*entries[1:], entries[0]]), BadManifest, "manifest.json")
    assert "first" in str(err) and repr(entries[1][0]) in str(err)
    refused(make_zip(tmp_path / "none.planb", entries[1:]), BadManifest, "manifest.json")


@pytest.mark.parametrize("text, why", [
    (b"plan demo {", "not JSON"),
    (b'{"schema": 1, "members": [], "x": NaN}', "NaN"),
    (b'{"schema": 1, "members": [], "x": -Infinity}', "Infinity"),
    (b'{"schema": 1, "schema": 1, "members": []}', "twice"),
    (b"[1, 2]", "object"),
    (b'{"schema": 1, "plan": "\xff"}', "UTF-8"),
    (b'{"schema": 1, "members": [{"path": "a"}]}', "members[0]"),
    (b'{"schema": 1}', "members"),
])
def test_bad_manifest(tmp_path: Path, text: bytes, why: str) -> None:
    err = refused(make_zip(tmp_path / "bm.planb", [("manifest.json", text)]), BadManifest, "manifest.json")
    assert why in str(err)


def test_unsupported_compression(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "bz.planb", good_entries(), zipfile.ZIP_BZIP2)
    refused(path, UnsupportedMember, "manifest.json")


def write_dir(root: Path, entries: list[tuple[Any, bytes]]) -> Path:
    for name, data in entries:
        f = root.joinpath(*name.split("/"))
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(data)
    return root


def test_directory_bundle(tmp_path: Path) -> None:
    root = write_dir(tmp_path / "ok", good_entries())
    b = load_bundle(root)
    assert b.is_dir and b.read(VMFB) == VMFB_DATA
    assert load_bundle(root).sha256 == b.sha256  # stable identity for the same content


def test_bad_directory_bundles(tmp_path: Path) -> None:
    root = write_dir(tmp_path / "b", good_entries())
    (root / "tools" / "notify" / "evil").symlink_to("/etc/passwd")
    refused(root, NotAFile, "tools/notify/evil")
    (root / "tools" / "notify" / "evil").unlink()
    (root / "tools" / "extra.txt").write_bytes(b"x")
    refused(root, UnexpectedMember, "tools/extra.txt")
    (root / "tools" / "extra.txt").unlink()
    (root / "empty").mkdir()  # an empty directory holds nothing and is not a member
    load_bundle(root)
    (root / "mlir" / "g0.mlir").write_bytes(b"module {}\r")
    refused(root, HashMismatch, "mlir/g0.mlir")
    (root / "mlir" / "g0.mlir").unlink()
    refused(root, MissingMember, "mlir/g0.mlir")
    (root / "manifest.json").unlink()
    refused(root, BadManifest, "manifest.json")


def test_extract_tools(tmp_path: Path) -> None:
    b = load_bundle(make_zip(tmp_path / "ok.planb", good_entries()))
    paths = b.extract_tools(tmp_path / "tools-out")
    assert set(paths) == {"notify", "py"}
    assert paths["notify"].read_bytes() == MEMBERS["tools/notify/notify.sh"]
    assert os.access(paths["notify"], os.X_OK)
    assert not os.access(paths["py"], os.X_OK)
    assert not (tmp_path / "tools-out" / "modules").exists()  # only tool files are unpacked
    paths = b.extract_tools(tmp_path / "tools-out")  # again: replaces, does not fail
    assert paths["notify"].stat().st_mode & 0o777 == 0o755


def test_summarize(tmp_path: Path) -> None:
    s = summarize(load_bundle(make_zip(tmp_path / "ok.planb", good_entries())))
    assert s["tasks"] == {"total": 5, "by_kind": {"builtin": 2, "compute": 1, "loop": 1, "tool": 1}}
    var = s["modules"]["g0"]["variants"]["x86_64-avx2"]
    assert var["size"] == len(VMFB_DATA) and var["sha256"] == hashlib.sha256(VMFB_DATA).hexdigest()[:12]
    assert s["tools"]["notify"]["executable"] and not s["tools"]["py"]["executable"]
    assert s["inputs"] == [{"name": "frame", "type": "f32[1, 8]"}]
    json.dumps(s, allow_nan=False)


def test_error_codes_are_distinct() -> None:
    classes = [BundleNotFound, TruncatedBundle, BadManifest, UnknownSchema, UnsafePath, NotAFile,
               DuplicateMember, HashMismatch, SizeMismatch, MissingMember, UnexpectedMember, UnsupportedMember]
    assert len({c.code for c in classes}) == len(classes)
    assert all(ERROR_CODES[c.code] == c.title for c in classes)


def test_runtime_imports_no_compiler() -> None:
    code = ("import sys, planc.runtime.bundle.loader; bad = sorted(m for m in sys.modules if m.split('.')[0] == 'jax'"
            " or m.startswith(('iree.compiler', 'planc.compiler', 'planc.dsl', 'lark', 'networkx')));"
            " print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         check=False)
    assert out.returncode == 0, out.stdout + out.stderr


# Found by scripts/soak.py (docs/reliability.md): each was accepted, or raised a traceback.
def test_member_name_starting_with_nul(tmp_path: Path) -> None:
    info = zinfo("tools/x")
    info.filename = "\x00evil"  # zipfile cuts the name at the NUL when it reads it back
    err = refused(make_zip(tmp_path / "nul.planb", [*good_entries(), (info, b"boom")]), UnsafePath, "")
    assert "empty name" in str(err)


@pytest.mark.parametrize("junk", [b"x", b"PK\x05\x06", bytes(300)])
def test_data_after_the_end_record(tmp_path: Path, junk: bytes) -> None:
    ok = make_zip(tmp_path / "ok.planb", good_entries()).read_bytes()
    bad = tmp_path / "tail.planb"
    bad.write_bytes(ok + junk)
    assert "truncated or not a planc bundle" in str(refused(bad, TruncatedBundle, None))


def test_pinned_digest(tmp_path: Path) -> None:
    from planc.runtime.bundle.loader import DigestMismatch
    from planc.runtime.cli import main

    path = make_zip(tmp_path / "ok.planb", good_entries())
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert load_bundle(path, sha256=digest).sha256 == digest
    assert load_bundle(path, sha256=digest[:12].upper()).sha256 == digest
    root = write_dir(tmp_path / "dir", good_entries())
    canonical = load_bundle(root).sha256  # a directory bundle's identity is its canonical zip form's
    assert load_bundle(root, sha256=canonical).sha256 == canonical
    other = make_zip(tmp_path / "other.planb", good_entries(plan="other"))  # consistent, but not the one
    for bad, pin in ((other, digest), (write_dir(tmp_path / "dir2", good_entries(plan="other")), canonical)):
        with pytest.raises(DigestMismatch, match="not the pinned"):
            load_bundle(bad, sha256=pin)
    for pin in ("", "abc", "g" * 64, digest + "0"):
        with pytest.raises(DigestMismatch, match="bad bundle digest"):
            load_bundle(path, sha256=pin)
    assert main(["inspect", str(other), "--sha256", digest]) == 1
