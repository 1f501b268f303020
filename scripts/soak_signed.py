"""Signature tamperers of the bundle soak (`soak.py --trust`): attacks on the signature itself.

Each takes a good *signed* bundle and returns a damaged one: the signature dropped, an edit re-signed
with the attacker's own key (or claiming the trusted key's fingerprint), the signed statement
rewritten to match an edit without re-signing, the signature's bytes or fields changed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from planc.runtime.bundle.format import MANIFEST, encode_manifest, validate_members_table, zip_chunks
from planc.runtime.bundle.signature import (
    PAYLOAD_TYPE,
    SIGNATURE,
    encode_envelope,
    encode_statement,
    pae,
    resources_of,
)
from soak_tamper import Good, Tampered, _edit_member, _rehash

__all__ = ["SIGNED_TAMPERS", "make_keys"]

_ATTACKER = ec.generate_private_key(ec.SECP256R1())


def make_keys(d: Path) -> tuple[Path, Path]:
    """A fresh P-256 key pair for the campaign's trusted signer: (private PEM, public PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    d.mkdir(parents=True, exist_ok=True)
    priv, pub = d / "release.pem", d / "release.pub"
    priv.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    pub.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    return priv, pub


def _fingerprint(key: ec.EllipticCurvePrivateKey) -> str:
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(pem).hexdigest()


def _edited(g: Good, rng: random.Random) -> list[tuple[str, bytes]]:
    """A consistent edit (a member changed, the table and variants re-hashed): valid but for the signature."""
    members = dict(g.entries[1:])
    name = rng.choice(sorted(members))
    members[name] = _edit_member(members[name], rng)
    return [(MANIFEST, encode_manifest(_rehash(g.manifest, members, refs=True))), *sorted(members.items())]


def _statement(g: Good, entries: list[tuple[str, bytes]]) -> bytes:
    manifest = json.loads(entries[0][1])
    return encode_statement(str(g.manifest.get("plan")), resources_of(entries[0][1], validate_members_table(manifest)))


def _zip(entries: list[tuple[str, bytes]], signature: bytes | None) -> bytes:
    return b"".join(zip_chunks([*entries, *([(SIGNATURE, signature)] if signature is not None else [])]))


def dropped(g: Good, rng: random.Random) -> Tampered:
    entries = _edited(g, rng) if rng.random() < 0.5 else list(g.entries)
    return Tampered(_zip(entries, None), "signature dropped" + (" after an edit" if entries[0] != g.entries[0] else ""))


def resigned(g: Good, rng: random.Random) -> Tampered:
    """The attacker edits and signs with its own key; half the time it claims the trusted key's hint."""
    entries = _edited(g, rng)
    payload = _statement(g, entries)
    sig = _ATTACKER.sign(pae(PAYLOAD_TYPE, payload), ec.ECDSA(hashes.SHA256()))
    claim = rng.random() < 0.5
    hint = json.loads(g.signature or b"{}")["verificationMaterial"]["publicKey"]["hint"] if claim \
        else _fingerprint(_ATTACKER)
    return Tampered(_zip(entries, encode_envelope(payload, sig, hint)),
                    "re-signed by another key" + (" claiming the trusted one" if claim else ""), consistent=True)


def restated(g: Good, rng: random.Random) -> Tampered:
    """The statement rewritten to match an edit, the trusted signature bytes kept."""
    entries = _edited(g, rng)
    doc = json.loads(g.signature or b"{}")
    doc["dsseEnvelope"]["payload"] = base64.b64encode(_statement(g, entries)).decode()
    return Tampered(_zip(entries, json.dumps(doc).encode()), "statement rewritten, signature kept", consistent=True)


def sig_edit(g: Good, rng: random.Random) -> Tampered:
    """One field of the signature changed: its bytes, the key hint, the payload type, the JSON itself."""
    doc = json.loads(g.signature or b"{}")
    env = doc["dsseEnvelope"]
    op = rng.randrange(5)
    if op == 0:
        raw = bytearray(base64.b64decode(env["signatures"][0]["sig"]))
        raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
        env["signatures"][0]["sig"] = base64.b64encode(bytes(raw)).decode()
    elif op == 1:
        doc["verificationMaterial"]["publicKey"]["hint"] = _fingerprint(_ATTACKER)
    elif op == 2:
        env["payloadType"] = "application/json"
    elif op == 3:
        env["signatures"].append(dict(env["signatures"][0]))
    else:
        data = bytearray(g.signature or b"")
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        return Tampered(_zip(list(g.entries), bytes(data)), "signature bytes flipped")
    return Tampered(_zip(list(g.entries), json.dumps(doc).encode()), f"signature field edited ({op})")


SIGNED_TAMPERS: dict[str, Callable[[Good, random.Random], Tampered]] = {
    "sig-dropped": dropped, "sig-resigned": resigned, "sig-restated": restated, "sig-edit": sig_edit,
}
