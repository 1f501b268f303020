"""The bundle signature's format: an OpenSSF model-signing statement in a DSSE envelope (no crypto here).

A signature is a sigstore bundle JSON (`signature.sigstore.json`, the last member of a zip bundle, a
file in a directory bundle) holding a DSSE envelope over an in-toto Statement v1 whose predicate is
OpenSSF model signing's v1.0 (`method: files`): one resource per file of the bundle's directory form,
`manifest.json` and every member, with its sha256. So `model_signing verify key DIR` accepts the
signature of a bundle unpacked into DIR, and whatever members a bundle holds are covered.
The cryptography (ECDSA P-256/384/521, Ed25519) lives in `trust.py`, which needs `cryptography`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from planc.runtime.bundle.format import MANIFEST, BundleError

__all__ = [
    "BUNDLE_MEDIA_TYPE",
    "PAYLOAD_TYPE",
    "PREDICATE_TYPE",
    "SIGNATURE",
    "BadSignature",
    "Envelope",
    "SignatureMismatch",
    "Signer",
    "TrustUnavailable",
    "Unsigned",
    "UntrustedSigner",
    "decode_envelope",
    "encode_envelope",
    "encode_statement",
    "pae",
    "resources_of",
    "short",
    "signed_resources",
    "statement_problem",
]

SIGNATURE = "signature.sigstore.json"
BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"
_CAP = 16 << 20  # a signature larger than this is not one planc wrote


class Unsigned(BundleError):
    code, title = "B0015", "bundle is not signed"


class UntrustedSigner(BundleError):
    code, title = "B0016", "bundle is signed by a key that is not trusted"


class SignatureMismatch(BundleError):
    code, title = "B0017", "bundle changed after it was signed"


class BadSignature(BundleError):
    code, title = "B0018", "signature is malformed or does not verify"


class TrustUnavailable(BundleError):
    code, title = "B0019", "trusted keys cannot be used"


@dataclass(frozen=True)
class Signer:
    """Who signed a bundle: the key's fingerprint (sha256 of its PEM public key) and, when a trusted
    key verified the signature, its kind and the file it was read from. Unverified: what it claims."""

    fingerprint: str
    verified: bool
    kind: str = ""
    key: str = ""

    def to_json(self) -> dict[str, object]:
        return {"fingerprint": self.fingerprint, "verified": self.verified, "kind": self.kind or None,
                "key": self.key or None}


def short(fingerprint: str) -> str:
    """A key's fingerprint as errors print it: `sha256:` and its first 16 hex digits."""
    return f"sha256:{fingerprint[:16]}"


def resources_of(manifest_bytes: bytes, table: Mapping[str, tuple[str, int]]) -> dict[str, str]:
    """What a signature covers: every file of the bundle's directory form and its sha256."""
    return {MANIFEST: hashlib.sha256(manifest_bytes).hexdigest(), **{p: d for p, (d, _) in table.items()}}


def encode_statement(name: str, resources: Mapping[str, str]) -> bytes:
    """The in-toto statement model_signing writes for a directory with these files (sorted by path)."""
    rows = [{"algorithm": "sha256", "digest": resources[p], "name": p} for p in sorted(resources)]
    root = hashlib.sha256(b"".join(bytes.fromhex(r["digest"]) for r in rows)).hexdigest()
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": name, "digest": {"sha256": root}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "serialization": {"method": "files", "hash_type": "sha256", "allow_symlinks": False,
                              "ignore_paths": [SIGNATURE]},
            "resources": rows,
        },
    }
    return (json.dumps(statement, indent=2, sort_keys=True) + "\n").encode()


def signed_resources(payload: bytes) -> dict[str, str] | None:
    """The files and sha256 digests a statement names; None unless it is a consistent model-signing
    v1.0 statement (sha256 resources, subject digest over them)."""
    try:
        s = json.loads(payload)
        rows = s["predicate"]["resources"]
        signed = {r["name"]: r["digest"] for r in rows if r["algorithm"] == "sha256"}
        root = hashlib.sha256(b"".join(bytes.fromhex(r["digest"]) for r in rows)).hexdigest()
        ok = (s["_type"] == STATEMENT_TYPE and s["predicateType"] == PREDICATE_TYPE and len(signed) == len(rows)
              and s["subject"][0]["digest"]["sha256"] == root)
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return None
    return signed if ok else None


def statement_problem(payload: bytes, resources: Mapping[str, str]) -> str | None:
    """Why a verified statement does not describe exactly these files, or None when it does."""
    signed = signed_resources(payload)
    if signed is None:
        return "its statement is not a consistent model-signing v1.0 statement"
    for path in sorted(set(signed) | set(resources)):
        if path not in resources:
            return f"member {path!r} was signed but is gone"
        if path not in signed:
            return f"member {path!r} was added after signing"
        if signed[path] != resources[path]:
            return f"member {path!r} differs from what was signed"
    return None


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what is actually signed."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def encode_envelope(payload: bytes, signature: bytes, hint: str) -> bytes:
    """The sigstore bundle JSON model_signing's key signer writes (`hint`: the key's fingerprint)."""
    doc = {"mediaType": BUNDLE_MEDIA_TYPE,
           "verificationMaterial": {"publicKey": {"hint": hint}, "tlogEntries": []},
           "dsseEnvelope": {"payload": base64.b64encode(payload).decode(), "payloadType": PAYLOAD_TYPE,
                            "signatures": [{"sig": base64.b64encode(signature).decode(), "keyid": ""}]}}
    return (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode()


@dataclass(frozen=True)
class Envelope:
    """A parsed (not yet verified) signature: who it says signed, what, and the signature bytes."""

    hint: str
    payload_type: str
    payload: bytes
    signature: bytes

    @property
    def signed(self) -> bytes:
        return pae(self.payload_type, self.payload)


def decode_envelope(data: bytes) -> Envelope:
    """Parse a signature member; BadSignature names what is malformed."""
    if len(data) > _CAP:
        raise BadSignature(f"{SIGNATURE} is {len(data)} bytes; a planc signature is far smaller", member=SIGNATURE)
    try:
        doc: Any = json.loads(data)
        env = doc["dsseEnvelope"]
        sigs = env["signatures"]
        hint = doc["verificationMaterial"]["publicKey"]["hint"]
        if not isinstance(sigs, list) or len(sigs) != 1 or not isinstance(hint, str):
            raise ValueError("expected one signature and a public key hint")
        payload_type = env["payloadType"]
        if payload_type != PAYLOAD_TYPE or doc.get("mediaType") != BUNDLE_MEDIA_TYPE:
            raise ValueError(f"expected a {BUNDLE_MEDIA_TYPE} over {PAYLOAD_TYPE}")
        payload = base64.b64decode(env["payload"], validate=True)
        signature = base64.b64decode(sigs[0]["sig"], validate=True)
    except (ValueError, KeyError, IndexError, TypeError, binascii.Error) as e:
        raise BadSignature(f"{SIGNATURE} is not a sigstore bundle with a DSSE envelope ({e})",
                           member=SIGNATURE) from None
    return Envelope(hint.lower(), payload_type, payload, signature)
