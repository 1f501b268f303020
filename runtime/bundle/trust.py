"""Trusted public keys (`--trust`, `PLANRT_TRUST`) and checking a bundle's signature against them.

Needs the `trust` extra (`cryptography`), imported only when trust is configured, so a bare
`pip install planc` runtime stays numpy + iree-base-runtime.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from planc.runtime.bundle.signature import (
    BadSignature,
    Envelope,
    SignatureMismatch,
    TrustUnavailable,
    UntrustedSigner,
    short,
    statement_problem,
)

__all__ = ["ENV", "INSTALL_HINT", "Trust", "TrustedKey", "key_kind", "load_public_key", "resolve_trust"]

ENV = "PLANRT_TRUST"
INSTALL_HINT = "pip install 'planc[trust]'"
_KEY_SUFFIXES = (".pub", ".pem")


def _crypto() -> Any:
    try:
        from cryptography.hazmat.primitives import serialization
    except ImportError:
        raise TrustUnavailable("checking bundle signatures needs the 'cryptography' package, which is not "
                               f"installed: {INSTALL_HINT}") from None
    return serialization


def key_kind(key: Any) -> str:
    """`ecdsa-p256`, `ecdsa-p384`, `ecdsa-p521` or `ed25519`; ValueError for any other key."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    if isinstance(key, (ed25519.Ed25519PublicKey, ed25519.Ed25519PrivateKey)):
        return "ed25519"
    if isinstance(key, (ec.EllipticCurvePublicKey, ec.EllipticCurvePrivateKey)):
        curves = {"secp256r1": "ecdsa-p256", "secp384r1": "ecdsa-p384", "secp521r1": "ecdsa-p521"}
        if key.curve.name in curves:
            return curves[key.curve.name]
        raise ValueError(f"elliptic curve {key.curve.name} is not supported (use P-256, P-384 or P-521)")
    raise ValueError(f"{type(key).__name__.lstrip('_')} keys are not supported (use ECDSA P-256 or Ed25519)")


def fingerprint_of(public_key: Any) -> str:
    """sha256 of the key's PEM SubjectPublicKeyInfo: `sha256sum key.pub` of an openssl-written key, and
    the `publicKey.hint` model_signing records."""
    s = _crypto()
    pem = public_key.public_bytes(s.Encoding.PEM, s.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(pem).hexdigest()


@dataclass(frozen=True)
class TrustedKey:
    """One public key a runtime accepts signatures from."""

    fingerprint: str
    kind: str
    source: Path
    key: Any = field(repr=False, compare=False)

    def verifies(self, envelope: Envelope) -> bool:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec

        try:
            if self.kind == "ed25519":
                self.key.verify(envelope.signature, envelope.signed)
            else:
                digest = {"ecdsa-p256": hashes.SHA256, "ecdsa-p384": hashes.SHA384}.get(self.kind, hashes.SHA512)
                self.key.verify(envelope.signature, envelope.signed, ec.ECDSA(digest()))
        except (InvalidSignature, ValueError):
            return False
        return True


def load_public_key(path: Path) -> TrustedKey:
    """A PEM public key file; TrustUnavailable names the file and what is wrong with it."""
    s = _crypto()
    try:
        key = s.load_pem_public_key(path.read_bytes())
        kind = key_kind(key)
    except OSError as e:
        raise TrustUnavailable(f"trusted key {path} cannot be read: {e.strerror}") from None
    except (ValueError, TypeError) as e:
        raise TrustUnavailable(f"trusted key {path} is not a PEM public key planrt accepts: {e}") from None
    return TrustedKey(fingerprint_of(key), kind, path, key)


@dataclass(frozen=True)
class Trust:
    """The keys a runtime trusts (several at once, for key rotation)."""

    keys: tuple[TrustedKey, ...]

    @classmethod
    def from_paths(cls, paths: Iterable[str | os.PathLike[str]]) -> Trust:
        """Key files, or directories whose `*.pub` and `*.pem` files are keys; at least one key."""
        keys: dict[str, TrustedKey] = {}
        for p in map(Path, paths):
            if p.is_dir():
                files = sorted(f for f in p.iterdir() if f.suffix in _KEY_SUFFIXES and f.is_file())
                if not files:
                    raise TrustUnavailable(f"trusted key directory {p} holds no *.pub or *.pem files")
            else:
                files = [p]
            for f in files:
                k = load_public_key(f)
                keys.setdefault(k.fingerprint, k)
        if not keys:
            raise TrustUnavailable("no trusted keys given")
        return cls(tuple(keys.values()))

    def describe(self) -> str:
        return ", ".join(f"{short(k.fingerprint)} ({k.source.name})" for k in self.keys)

    def signer(self, envelope: Envelope) -> TrustedKey:
        """The trusted key that made the envelope's signature; else the error that says why not. The
        signature names its key (model_signing's `publicKey.hint`); only that key is tried."""
        key = next((k for k in self.keys if k.fingerprint == envelope.hint), None)
        if key is None:
            raise UntrustedSigner(f"the bundle is signed by key {short(envelope.hint)}, which is not trusted "
                                  f"(trusted: {self.describe()})")
        if not key.verifies(envelope):
            raise BadSignature(f"the signature does not verify with trusted key {short(key.fingerprint)} "
                               f"({key.source.name}): the signature or what it signs was altered")
        return key

    def covers(self, key: TrustedKey, envelope: Envelope, resources: Mapping[str, str]) -> None:
        """SignatureMismatch unless the verified statement names exactly these files and digests."""
        problem = statement_problem(envelope.payload, resources)
        if problem is not None:
            raise SignatureMismatch(f"the bundle changed after key {short(key.fingerprint)} signed it: {problem}",
                                    member=_member_of(problem))


def _member_of(problem: str) -> str | None:
    return problem.split("'")[1] if problem.startswith("member '") else None


def resolve_trust(paths: Sequence[str | os.PathLike[str]] | None,
                  env: Mapping[str, str] | None = None) -> Trust | None:
    """The keys named by `--trust` (files or directories), else by `$PLANRT_TRUST` (paths separated by
    the OS path separator); None when neither names any: signatures are then not checked."""
    env = os.environ if env is None else env
    if not paths:
        paths = [p for p in env.get(ENV, "").split(os.pathsep) if p.strip()]
    return Trust.from_paths(paths) if paths else None
