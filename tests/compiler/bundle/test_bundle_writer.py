"""The bundle writer: canonical, byte-identical, atomic bundles that the loader accepts; `planc inspect`."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from planc.compiler.bundle.writer import build_manifest, bundle_bytes_sha256, write_bundle, write_bundle_dir
from planc.compiler.cli import main
from planc.runtime.bundle.loader import load_bundle

VMFB = "modules/g0/x86_64-avx2.vmfb"
MEMBERS = {
    VMFB: bytes(range(256)) * 64,
    "modules/g0/cuda-sm80.vmfb": b"\x00vmfb-cuda" * 100,
    "mlir/g0.mlir": "module @g0 { // é\n}\n".encode(),
    "tools/notify/notify.sh": b"#!/bin/sh\ncat\n",
}
MANIFEST: dict[str, Any] = {
    "schema": 1, "plan": "demo", "objective": "latency",
    "versions": {"planc": "0.1.0", "iree": "3.13.0", "jax": "0.10.2"},
    "targets": ["x86_64-avx2", "cuda-sm80"],
    "inputs": [{"name": "frame", "dtype": "f32", "shape": [1, 64, 64, 3]}],
    "outputs": [{"name": "alert", "value": "alert"}, {"name": "score", "value": "pre.1"}],
    "tasks": [
        {"name": "pre", "kind": "compute", "module": "g0", "args": ["frame"], "results": ["pre.0", "pre.1"]},
        {"name": "worst", "kind": "builtin", "op": "max", "args": ["pre.1"], "results": ["worst"]},
        {"name": "alert", "kind": "tool", "tool": "notify", "args": ["worst", {"const": "hi"}],
         "results": ["alert"], "when": {"op": ">", "args": [{"ref": "worst"}, {"num": 0.5}]},
         "policy": {"retry": 3, "backoff": [0.1, 2.0], "timeout": 2.0}},
    ],
    "modules": {"g0": {
        "inputs": [{"dtype": "f32", "shape": [1, 64, 64, 3]}],
        "outputs": [{"dtype": "f32", "shape": [1, 64, 64, 3]}, {"dtype": "f32", "shape": [1, 4]}],
        "members": ["pre"],
        "variants": {"x86_64-avx2": {"path": VMFB, "backend": "llvm-cpu", "driver": "local-task"},
                     "cuda-sm80": {"path": "modules/g0/cuda-sm80.vmfb", "backend": "cuda", "driver": "cuda"}},
    }},
    "tools": {"notify": {"kind": "exec", "path": "tools/notify/notify.sh"}},
    "schedules": {"edge": {"devices": ["cpu0", "gpu0"], "placement": {"g0": "gpu0", "worst": "cpu0"},
                           "order": ["g0", "worst", "alert"], "makespan": 0.0012}},
    "cost_model": {"version": 1},
    "source": {"file": "défauts.plan", "sha256": "0" * 64},
}


def test_round_trip(tmp_path: Path) -> None:
    digest = write_bundle(tmp_path / "demo.planb", MANIFEST, MEMBERS)
    b = load_bundle(tmp_path / "demo.planb")
    assert b.sha256 == digest == hashlib.sha256((tmp_path / "demo.planb").read_bytes()).hexdigest()
    assert b.manifest == build_manifest(MANIFEST, MEMBERS)
    assert {p: b.read(p) for p in b.members} == MEMBERS
    assert b.manifest["modules"]["g0"]["variants"]["x86_64-avx2"]["sha256"] == hashlib.sha256(
        MEMBERS[VMFB]).hexdigest()
    assert "members" not in MANIFEST and "sha256" not in MANIFEST["modules"]["g0"]["variants"]["cuda-sm80"]


def test_zip_layout_is_canonical(tmp_path: Path) -> None:
    write_bundle(tmp_path / "demo.planb", MANIFEST, MEMBERS)
    with zipfile.ZipFile(tmp_path / "demo.planb") as zf:
        assert zf.testzip() is None
        infos = zf.infolist()
        manifest_text = zf.read("manifest.json").decode()
    assert [i.filename for i in infos] == ["manifest.json", *sorted(MEMBERS)]
    for i in infos:
        assert (i.date_time, i.external_attr >> 16, i.extra, i.compress_type) == (
            (1980, 1, 1, 0, 0, 0), 0o100644, b"", zipfile.ZIP_STORED)
    assert manifest_text == json.dumps(json.loads(manifest_text), sort_keys=True, indent=1,
                                       ensure_ascii=False) + "\n"
    assert '"file": "défauts.plan"' in manifest_text  # UTF-8, not \u escapes


def test_byte_identical_across_writes_and_orders(tmp_path: Path) -> None:
    a = write_bundle(tmp_path / "a.planb", MANIFEST, MEMBERS)
    b = write_bundle(tmp_path / "b.planb", dict(reversed(list(MANIFEST.items()))),
                     dict(reversed(list(MEMBERS.items()))))
    assert a == b == bundle_bytes_sha256(MANIFEST, MEMBERS)
    assert (tmp_path / "a.planb").read_bytes() == (tmp_path / "b.planb").read_bytes()


def test_byte_identical_across_processes(tmp_path: Path) -> None:
    script = tmp_path / "w.py"
    script.write_text(
        "import json, sys\nfrom planc.compiler.bundle.writer import write_bundle\n"
        "m, members = json.load(open(sys.argv[1]))\n"
        "print(write_bundle(sys.argv[2], m, {k: bytes.fromhex(v) for k, v in members.items()}))\n")
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps([MANIFEST, {k: v.hex() for k, v in MEMBERS.items()}]))
    digests = []
    for n, seed in enumerate(("0", "12345")):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, str(script), str(spec), str(tmp_path / f"p{n}.planb")],
                             capture_output=True, text=True, env=env, timeout=60, check=True)
        digests.append(out.stdout.strip())
    assert digests[0] == digests[1] == write_bundle(tmp_path / "here.planb", MANIFEST, MEMBERS)
    assert (tmp_path / "p0.planb").read_bytes() == (tmp_path / "p1.planb").read_bytes()


def test_directory_form_has_same_content_and_identity(tmp_path: Path) -> None:
    file_sha = write_bundle(tmp_path / "demo.planb", MANIFEST, MEMBERS)
    dir_sha = write_bundle_dir(tmp_path / "demo", MANIFEST, MEMBERS)
    assert dir_sha == file_sha
    b = load_bundle(tmp_path / "demo")
    assert b.is_dir and b.sha256 == file_sha
    assert b.manifest == load_bundle(tmp_path / "demo.planb").manifest
    assert (tmp_path / "demo" / "manifest.json").read_bytes() == zipfile.ZipFile(
        tmp_path / "demo.planb").read("manifest.json")
    assert sorted(str(p.relative_to(tmp_path / "demo")) for p in (tmp_path / "demo").rglob("*")
                  if p.is_file()) == sorted(["manifest.json", *MEMBERS])


def test_rewrite_replaces_atomically_and_leaves_no_temp(tmp_path: Path) -> None:
    write_bundle(tmp_path / "demo.planb", MANIFEST, MEMBERS)
    other = {**MEMBERS, "mlir/g0.mlir": b"module {}\n"}
    write_bundle(tmp_path / "demo.planb", MANIFEST, other)
    assert load_bundle(tmp_path / "demo.planb").read("mlir/g0.mlir") == b"module {}\n"
    write_bundle_dir(tmp_path / "demo", MANIFEST, MEMBERS)
    write_bundle_dir(tmp_path / "demo", MANIFEST, other)
    assert load_bundle(tmp_path / "demo").read("mlir/g0.mlir") == b"module {}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo", "demo.planb"]
    assert (tmp_path / "demo.planb").stat().st_mode & 0o777 == 0o644


def test_directory_writer_refuses_foreign_directory(tmp_path: Path) -> None:
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a planc bundle directory"):
        write_bundle_dir(tmp_path / "home", MANIFEST, MEMBERS)
    assert (tmp_path / "home" / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("name, why", [
    ("../evil", "'..'"), ("/abs/evil", "absolute"), ("tools\\evil", "backslash"), ("C:/evil", "drive"),
    ("tools//evil", "empty"), ("tools/./evil", "'.'"), ("", "non-empty"), ("MLIR/g0.mlir", "case"),
    ("tools/notify/notify.sh/x", "both a file and a directory"), ("manifest.json", "cannot also be a member"),
])
def test_unsafe_member_paths_refused_at_write(tmp_path: Path, name: str, why: str) -> None:
    with pytest.raises(ValueError, match=None) as info:
        write_bundle(tmp_path / "bad.planb", MANIFEST, {**MEMBERS, name: b"x"})
    assert why in str(info.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("manifest, why", [
    ({**MANIFEST, "cost_model": {"x": float("nan")}}, "canonical JSON"),
    ({**MANIFEST, "cost_model": {"x": object()}}, "canonical JSON"),
    ({**MANIFEST, "schema": 2}, "schema 2"),
    ({**MANIFEST, "tools": {"t": {"kind": "exec", "path": "tools/t/absent.sh"}}}, "tools/t/absent.sh"),
])
def test_bad_manifest_refused_at_write(tmp_path: Path, manifest: dict[str, Any], why: str) -> None:
    with pytest.raises(ValueError) as info:
        write_bundle(tmp_path / "bad.planb", manifest, MEMBERS)
    assert why in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_variant_hash_must_agree(tmp_path: Path) -> None:
    m = json.loads(json.dumps(MANIFEST))
    m["modules"]["g0"]["variants"]["x86_64-avx2"]["sha256"] = "0" * 64
    with pytest.raises(ValueError, match="x86_64-avx2"):
        write_bundle(tmp_path / "bad.planb", m, MEMBERS)


def test_inspect_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    digest = write_bundle(tmp_path / "demo.planb", MANIFEST, MEMBERS)
    assert main(["inspect", str(tmp_path / "demo.planb")]) == 0
    out = capsys.readouterr().out
    for expect in (f"sha256     {digest}", "plan       demo (schema 1, objective latency)",
                   "frame: f32[1, 64, 64, 3]", "score = pre.1", "tasks      3: 1 builtin, 1 compute, 1 tool",
                   f"sha256 {hashlib.sha256(MEMBERS[VMFB]).hexdigest()[:12]}  llvm-cpu/local-task",
                   "notify: exec tools/notify/notify.sh (14 B, executable)",
                   "edge: devices cpu0, gpu0; makespan 1.200 ms; 3 steps (cpu0: 1, gpu0: 1)", "verified"):
        assert expect in out, expect


def test_inspect_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_bundle_dir(tmp_path / "demo", MANIFEST, MEMBERS)
    assert main(["inspect", str(tmp_path / "demo"), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["ok"] and s["form"] == "directory" and s["plan"] == "demo"
    assert s["modules"]["g0"]["variants"]["cuda-sm80"]["size"] == len(MEMBERS["modules/g0/cuda-sm80.vmfb"])
    assert s["members"] == {"count": 4, "bytes": sum(map(len, MEMBERS.values())),
                            "sizes": {p: len(d) for p, d in MEMBERS.items()}}


def test_inspect_reports_bad_bundle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "demo.planb"
    write_bundle(path, MANIFEST, MEMBERS)
    data = bytearray(path.read_bytes())
    data[bytes(data).index(MEMBERS[VMFB]) + 7] ^= 0xFF
    path.write_bytes(bytes(data))
    assert main(["inspect", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error[B0008]:") and VMFB in err and "Traceback" not in err
    assert main(["inspect", str(path), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is False and out["error"]["kind"] == "HashMismatch" and out["error"]["member"] == VMFB
