"""Signed bundles (docs/bundle.md, Signatures): `planc sign`, `planrt --trust`, key rotation, refusals
before anything runs, resume and serve's hot swap, and OpenSSF model_signing accepting planc's signature."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from planc.compiler.bundle.sign import SignError, sign_bundle
from planc.compiler.cli import main as planc_main
from planc.runtime.bundle.format import MANIFEST, zip_chunks
from planc.runtime.bundle.loader import BundleError, load_bundle
from planc.runtime.bundle.signature import (
    SIGNATURE,
    BadSignature,
    SignatureMismatch,
    TrustUnavailable,
    Unsigned,
    UntrustedSigner,
)
from planc.runtime.bundle.trust import Trust, resolve_trust
from planc.runtime.cli import main as planrt_main

PLAN = Path(__file__).parent / "plans" / "signed" / "signed.plan"


def _write_key(d: Path, name: str, key: object) -> tuple[Path, Path]:
    priv, pub = d / f"{name}.pem", d / f"{name}.pub"
    priv.write_bytes(key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption()))  # type: ignore[attr-defined]
    pub.write_bytes(key.public_key().public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo))  # type: ignore[attr-defined]
    return priv, pub


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    d = tmp_path_factory.mktemp("keys")
    return {"ec": _write_key(d, "ec", ec.generate_private_key(ec.SECP256R1())),
            "ed": _write_key(d, "ed", ed25519.Ed25519PrivateKey.generate()),
            "other": _write_key(d, "other", ec.generate_private_key(ec.SECP256R1()))}


@pytest.fixture(scope="module")
def unsigned(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("built") / "signed.planb"
    assert planc_main(["compile", str(PLAN), "-o", str(out)]) == 0
    return out


def _copy(src: Path, dst: Path) -> Path:
    shutil.copyfile(src, dst)
    return dst


def _planrt(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = planrt_main(list(argv))
    return rc, out.getvalue(), err.getvalue()


def _entries(path: Path) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(path) as zf:
        return [(i.filename, zf.read(i)) for i in zf.infolist()]


def test_sign_zip_and_directory_rotation_and_inspect(tmp_path, unsigned, keys) -> None:
    b = _copy(unsigned, tmp_path / "b.planb")
    assert planc_main(["sign", str(b), "--key", str(keys["ec"][0])]) == 0
    assert [n for n, _ in _entries(b)][-1] == SIGNATURE
    signed_once = b.read_bytes()
    assert planc_main(["sign", str(b), "--key", str(keys["ec"][0])]) == 0
    assert b.read_bytes() == signed_once  # deterministic ECDSA (RFC 6979): signing is reproducible
    both = Trust.from_paths([keys["ec"][1], keys["ed"][1]])  # rotation: old and new key trusted at once
    first = load_bundle(b, trust=both)
    assert first.signer is not None and first.signer.verified and first.signer.kind == "ecdsa-p256"
    res = sign_bundle(b, keys["ed"][0])  # re-signing replaces the signature
    second = load_bundle(b, trust=both)
    assert second.signer is not None and second.signer.fingerprint == res.fingerprint != first.signer.fingerprint
    assert res.fingerprint == hashlib.sha256(keys["ed"][1].read_bytes()).hexdigest()  # = `sha256sum key.pub`
    with pytest.raises(UntrustedSigner, match=first.signer.fingerprint[:16]):
        load_bundle(b, trust=Trust.from_paths([keys["ec"][1]]))
    # a directory bundle: the same members, the signature a file in it, the same identity as the zip
    d = tmp_path / "d"
    d.mkdir()
    for name, data in _entries(b):
        (d / name).parent.mkdir(parents=True, exist_ok=True)
        (d / name).write_bytes(data)
    assert load_bundle(d, trust=both).sha256 == second.sha256
    resigned = sign_bundle(d, keys["ec"][0])  # signing a directory bundle writes the file in it
    assert load_bundle(d, trust=both).signer.fingerprint == resigned.fingerprint == first.signer.fingerprint  # type: ignore[union-attr]
    assert resigned.sha256 == first.sha256  # the directory's identity is its zip form's
    rc, out, err = _planrt("inspect", str(b), "--trust", str(keys["ed"][1]), "--trust", str(keys["ec"][1]))
    assert rc == 0 and f"signed by  sha256:{res.fingerprint} (ed25519, verified with trusted key ed.pub)" in out
    assert "not checked" not in err
    rc, out, err = _planrt("inspect", str(b))
    assert rc == 0 and "claimed; not checked" in out
    assert err.count("\n") == 1 and "signature not checked (it claims key sha256:" in err
    keydir = keys["ec"][1].parent / "trusted"
    keydir.mkdir(exist_ok=True)
    shutil.copy(keys["ed"][1], keydir)
    rc, out, _ = _planrt("inspect", str(b), "--json", "--trust", str(keydir))
    assert rc == 0 and json.loads(out)["bundle"]["signature"]["verified"] is True


def _rehashed(entries: list[tuple[str, bytes]], member: str, data: bytes) -> list[tuple[str, bytes]]:
    """Replace a member and re-hash the manifest consistently: a valid bundle, but not the signed one."""
    out = dict(entries)
    out[member] = data
    manifest = json.loads(out[MANIFEST])
    for row in manifest["members"]:
        if row["path"] == member:
            row["sha256"], row["size"] = hashlib.sha256(data).hexdigest(), len(data)
    out[MANIFEST] = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()
    return [(n, out[n]) for n, _ in entries]


def test_refusals_name_reason_and_key_before_anything_runs(tmp_path, unsigned, keys) -> None:
    b = _copy(unsigned, tmp_path / "b.planb")
    trust = Trust.from_paths([keys["ec"][1]])
    with pytest.raises(Unsigned, match=r"not signed.*sha256:[0-9a-f]{16}"):
        load_bundle(b, trust=trust)
    sign_bundle(b, keys["ec"][0])
    entries = _entries(b)
    tool = next(n for n, _ in entries if n.startswith("tools/"))
    evil = b"#!/bin/sh\necho pwned > \"$NOTE_LOG\"\n"
    sig = dict(entries)[SIGNATURE]
    cases = {
        "rehashed": (_rehashed(entries, tool, evil), SignatureMismatch, "changed after key sha256:"),
        "member": ([(n, evil if n == tool else d) for n, d in entries], SignatureMismatch, "changed after key"),
        "manifest": ([(n, d.replace(b'"objective": "latency"', b'"objective": "energy"') if n == MANIFEST else d)
                      for n, d in entries], SignatureMismatch, "changed after key"),
        "manifest-garbage": ([(n, b"\xff{not json" if n == MANIFEST else d) for n, d in entries], SignatureMismatch,
                             "manifest.json differs from what was signed"),  # refused before it is parsed
        "sig-flipped": ([(n, d.replace(b'"sig": "M', b'"sig": "N') if n == SIGNATURE else d) for n, d in entries],
                        BadSignature, "does not verify"),
        "sig-garbage": ([(n, b"{}" if n == SIGNATURE else d) for n, d in entries], BadSignature, "DSSE"),
        "sig-first": ([entries[0], (SIGNATURE, sig), *entries[1:-1]], BundleError, "last member"),
    }
    assert b'"sig": "M' in sig  # a DER ECDSA signature starts 0x30 (base64 'M')
    for name, (new, error, text) in cases.items():
        t = tmp_path / f"{name}.planb"
        t.write_bytes(b"".join(zip_chunks(new)))
        with pytest.raises(error, match=text):
            load_bundle(t, trust=trust)
        # the CLI: exit 1, the reason, and nothing unpacked, no run directory, no side effect
        cwd = tmp_path / f"cwd-{name}"
        cwd.mkdir()
        np.save(cwd / "x.npy", np.ones(4, np.float32))
        rc, _, err = _planrt("run", str(t), "-i", f"x={cwd / 'x.npy'}", "--run-dir", str(cwd / "runs"),
                               "--trust", str(keys["ec"][1]), "--auto-approve")
        assert rc == 1 and "planrt: error:" in err and text.split(" sha256")[0] in err, err
        assert sorted(p.name for p in cwd.iterdir()) == ["x.npy"]
    rehashed = tmp_path / "rehashed.planb"
    assert load_bundle(rehashed).signer is not None  # without trust it loads: only a key tells them apart


def test_run_resume_and_env_trust(tmp_path, unsigned, keys, monkeypatch) -> None:
    b = _copy(unsigned, tmp_path / "b.planb")
    sign_bundle(b, keys["ec"][0])
    np.save(tmp_path / "x.npy", np.arange(4, dtype=np.float32))
    monkeypatch.setenv("NOTE_LOG", str(tmp_path / "note.log"))
    monkeypatch.setenv("PLANRT_TRUST", f"{keys['other'][1]}{os.pathsep}{keys['ec'][1]}")
    rc, out, err = _planrt("run", str(b), "-i", f"x={tmp_path / 'x.npy'}", "--run-dir", str(tmp_path / "runs"),
                           "--run-id", "r1", "--json")
    assert rc == 0 and json.loads(out)["outputs"]["total"] == 6.0 and "not checked" not in err
    assert (tmp_path / "note.log").read_text().count("\n") == 1
    rc, _, err = _planrt("resume", str(tmp_path / "runs" / "r1"))  # the same signed bundle: resumes
    assert rc == 0 and (tmp_path / "note.log").read_text().count("\n") == 1, err
    # Resume checks the bundle is still the one the run started with: re-signed by another trusted key
    # is another bundle; an unsigned copy is refused by trust before the pin is even reached.
    sign_bundle(b, keys["other"][0])
    rc, _, err = _planrt("resume", str(tmp_path / "runs" / "r1"))
    assert rc == 1 and "not the pinned" in err
    _copy(unsigned, b)
    rc, _, err = _planrt("resume", str(tmp_path / "runs" / "r1"), "--trust", str(keys["ec"][1]))
    assert rc == 1 and "planrt: error:" in err
    monkeypatch.setenv("PLANRT_TRUST", str(tmp_path / "missing.pub"))
    rc, _, err = _planrt("inspect", str(b))
    assert rc == 1 and "missing.pub cannot be read" in err
    assert resolve_trust(None, env={}) is None


def test_api_load_takes_trust(tmp_path, unsigned, keys, monkeypatch) -> None:
    import planc.runtime

    monkeypatch.delenv("PLANRT_TRUST", raising=False)
    b = _copy(unsigned, tmp_path / "b.planb")
    with pytest.raises(Unsigned):
        planc.runtime.load(b, trust=[keys["ec"][1]])
    sign_bundle(b, keys["ec"][0])
    monkeypatch.setenv("NOTE_LOG", str(tmp_path / "note.log"))
    with planc.runtime.load(b, trust=[keys["ec"][1]]) as plan:
        assert plan.bundle.signer is not None and plan.bundle.signer.verified
        assert float(plan.run(x=np.ones(4, np.float32)).outputs["total"].value) == 4.0
    with pytest.raises(UntrustedSigner):
        planc.runtime.load(b, trust=[keys["ed"][1]])


def test_trust_without_cryptography_says_how_to_install(tmp_path, unsigned, keys) -> None:
    code = ("import sys; sys.modules['cryptography'] = None; from planc.runtime.cli import main; "
            f"sys.exit(main(['inspect', {str(unsigned)!r}, '--trust', {str(keys['ec'][1])!r}]))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 1 and "pip install 'planc[trust]'" in proc.stderr and "Traceback" not in proc.stderr
    with pytest.raises(TrustUnavailable, match="not a PEM public key"):
        Trust.from_paths([keys["ec"][0]])  # a private key where a public one belongs
    with pytest.raises(SignError, match="not a PEM private key"):
        sign_bundle(unsigned, keys["ec"][1])


def test_model_signing_verifies_a_planc_signature(tmp_path, unsigned, keys) -> None:
    verifying = pytest.importorskip("model_signing.verifying", reason="the dev extra installs model-signing")
    b = _copy(unsigned, tmp_path / "b.planb")
    sign_bundle(b, keys["ec"][0])
    d = tmp_path / "unpacked"
    with zipfile.ZipFile(b) as zf:
        zf.extractall(d)
    config = verifying.Config().use_elliptic_key_verifier(public_key=keys["ec"][1])
    config.verify(d, d / SIGNATURE)  # raises ValueError on any mismatch
    sign_bundle(d, keys["other"][0])  # a directory bundle signed in place by planc, checked as it is
    verifying.Config().use_elliptic_key_verifier(public_key=keys["other"][1]).verify(d, d / SIGNATURE)
    with pytest.raises(ValueError, match="Key mismatch"):
        config.verify(d, d / SIGNATURE)
    sign_bundle(d, keys["ec"][0])
    tool = next(p for p in d.rglob("*.py"))
    tool.write_bytes(tool.read_bytes() + b"\n# changed\n")
    with pytest.raises(ValueError, match="Hash mismatch"):
        config.verify(d, d / SIGNATURE)


def test_serve_refuses_untrusted_bundles_and_hot_swaps(tmp_path, unsigned, keys) -> None:
    pytest.importorskip("uvicorn", reason="planrt serve needs the serve extra")
    from serve_support import PLANRT, ServerProcess, get, post_json

    v1 = _copy(unsigned, tmp_path / "v1.planb")
    proc = subprocess.run([str(PLANRT), "serve", str(v1), "--trust", str(keys["ec"][1]), "--port", "9",
                           "--state-dir", str(tmp_path / "refused")],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 1 and "not signed" in proc.stderr and "Traceback" not in proc.stderr
    sign_bundle(v1, keys["ec"][0])
    entries = _entries(v1)
    tool = next(n for n, _ in entries if n.startswith("tools/"))
    bad = tmp_path / "bad.planb"
    bad.write_bytes(b"".join(zip_chunks(_rehashed(entries, tool, b"#!/bin/sh\necho '{}'\n"))))
    v2 = _copy(unsigned, tmp_path / "v2.planb")
    sign_bundle(v2, keys["ed"][0])  # the next release, signed with the rotated-in key
    server = ServerProcess([v1], tmp_path / "state", "--model-control", "explicit", "--repository-dir", str(tmp_path),
                           "--trust", str(keys["ec"][1]), "--trust", str(keys["ed"][1]))
    try:
        version = json.loads(get(server.url, "/v2/models/signed")[1])["versions"][0]
        assert version == load_bundle(v1).sha256
        status, doc, _ = post_json(server.url, "/v2/repository/models/signed/load", {"parameters": {"path": str(bad)}})
        assert status == 400 and "changed after key sha256:" in doc["error"]
        assert json.loads(get(server.url, "/v2/models/signed")[1])["versions"][0] == version  # still the old one
        status, doc, _ = post_json(server.url, "/v2/repository/models/signed/load", {"parameters": {"path": str(v2)}})
        assert status == 200 and doc["version"] == load_bundle(v2).sha256
    finally:
        server.stop()
