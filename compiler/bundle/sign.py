"""Sign a bundle with a PEM private key (ECDSA P-256/384/521 or Ed25519): `planc sign`, `compile --sign`.

The signature is OpenSSF model signing's format (runtime/bundle/signature.py): a DSSE envelope over
the digests of `manifest.json` and every member, written as the bundle's last member (a file in a
directory bundle). Signing again replaces the old signature. `cryptography` does the math.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

from planc.compiler.bundle.writer import write_atomic
from planc.runtime.bundle.format import MANIFEST, BundleError, validate_members_table, zip_chunks
from planc.runtime.bundle.loader import Bundle, load_bundle
from planc.runtime.bundle.signature import (
    PAYLOAD_TYPE,
    SIGNATURE,
    encode_envelope,
    encode_statement,
    pae,
    resources_of,
)
from planc.runtime.bundle.trust import Trust, TrustedKey, fingerprint_of, key_kind

__all__ = ["SignError", "SignResult", "load_private_key", "sign_bundle"]


class SignError(ValueError):
    """The key or the bundle cannot be signed with; the message names which and why."""


@dataclass(frozen=True)
class SignResult:
    path: Path
    sha256: str  # the signed bundle's identity (what `--sha256` pins)
    fingerprint: str  # the signing key's (sha256 of its PEM public key; what `--trust` matches)
    kind: str


def load_private_key(path: str | os.PathLike[str], password: bytes | None = None) -> TrustedKey:
    """A PEM private key (PKCS#8 or traditional, as openssl and cryptography write them) with its public
    half's fingerprint, as a TrustedKey whose `key` is the private key."""
    try:
        from cryptography.hazmat.primitives import serialization
    except ImportError:
        raise SignError("signing needs the 'cryptography' package: pip install 'planc[trust]'") from None
    p = Path(path)
    try:
        key = serialization.load_pem_private_key(p.read_bytes(), password)
        kind = key_kind(key)
    except OSError as e:
        raise SignError(f"signing key {p} cannot be read: {e.strerror}") from None
    except TypeError as e:
        raise SignError(f"signing key {p}: {e} (set PLANC_SIGNING_KEY_PASSWORD for an encrypted key)") from None
    except ValueError as e:
        raise SignError(f"signing key {p} is not a PEM private key planc signs with: {e}") from None
    return TrustedKey(fingerprint_of(key.public_key()), kind, p, key)


def _sign(key: TrustedKey, message: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    if key.kind == "ed25519":
        return key.key.sign(message)
    digest = {"ecdsa-p256": hashes.SHA256, "ecdsa-p384": hashes.SHA384}.get(key.kind, hashes.SHA512)
    return key.key.sign(message, ec.ECDSA(digest(), deterministic_signing=True))  # RFC 6979: same bytes again


def _manifest_bytes(bundle: Bundle) -> bytes:
    if bundle.is_dir:
        return (bundle.path / MANIFEST).read_bytes()
    with zipfile.ZipFile(bundle.path) as zf:
        return zf.read(MANIFEST)


def sign_bundle(path: str | os.PathLike[str], key_path: str | os.PathLike[str], *,
                password: bytes | None = None) -> SignResult:
    """Verify the bundle at `path`, sign it with the key at `key_path` in place (atomically), check the
    result with the key's public half, and return its new identity. Raises SignError or BundleError."""
    key = load_private_key(key_path, password)
    bundle = load_bundle(path)
    mbytes = _manifest_bytes(bundle)
    resources = resources_of(mbytes, validate_members_table(bundle.manifest))
    payload = encode_statement(str(bundle.manifest.get("plan", bundle.path.stem)), resources)
    sig = encode_envelope(payload, _sign(key, pae(PAYLOAD_TYPE, payload)), key.fingerprint)
    if bundle.is_dir:
        write_atomic(bundle.path / SIGNATURE, [sig])
    else:
        entries = [(MANIFEST, mbytes), *((m, bundle.read(m)) for m in bundle.members), (SIGNATURE, sig)]
        write_atomic(bundle.path, zip_chunks(entries))
    public = TrustedKey(key.fingerprint, key.kind, key.source, key.key.public_key())
    try:
        signed = load_bundle(bundle.path, trust=Trust((public,)))
    except BundleError as e:  # changed while we signed it
        raise SignError(f"{bundle.path} did not verify after signing: {e}") from None
    return SignResult(bundle.path, signed.sha256, key.fingerprint, key.kind)
