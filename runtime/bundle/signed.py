"""The loader's signature steps: take the signature member aside, check it against the trusted keys
before the members are trusted, and say who signed (or that nobody checked)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, Protocol

from planc.runtime.bundle.format import MANIFEST, BundleError, UnexpectedMember, validate_members_table
from planc.runtime.bundle.signature import (
    SIGNATURE,
    BadSignature,
    Envelope,
    SignatureMismatch,
    Signer,
    Unsigned,
    decode_envelope,
    resources_of,
    short,
    signed_resources,
)
from planc.runtime.bundle.trust import Trust, TrustedKey

__all__ = ["SignatureCheck", "take_signature"]

_CAP = 16 << 20
_Verified = tuple[dict[str, Any], bytes, dict[str, bytes]]


class _Source(Protocol):
    names: list[str]

    def read(self, name: str, cap: int) -> bytes: ...


def take_signature(source: _Source, *, is_zip: bool) -> bytes | None:
    """Remove the signature from the source's member names and return its bytes (None: unsigned).
    In a zip it must be the last member, after everything it signs."""
    if SIGNATURE not in source.names:
        return None
    if is_zip and source.names[-1] != SIGNATURE:
        raise UnexpectedMember(f"{SIGNATURE} must be the bundle's last member", member=SIGNATURE)
    source.names = [n for n in source.names if n != SIGNATURE]
    return source.read(SIGNATURE, _CAP + 1)


class SignatureCheck:
    """One bundle's signature: `before()` runs before any member is read (with trust: refuses an
    unsigned bundle, an untrusted or failing signature); `after()` once the manifest and members
    agree (with trust: the signed statement names exactly those files and digests)."""

    def __init__(self, data: bytes | None, trust: Trust | None) -> None:
        self.data, self.trust = data, trust
        self.envelope: Envelope | None = None
        self.key: TrustedKey | None = None

    def before(self, manifest: Callable[[], bytes | None]) -> None:
        """With trust: a signature by a trusted key, over exactly these `manifest.json` bytes (read
        by `manifest()`, None when absent), so no unsigned manifest is even parsed."""
        if self.trust is None:
            return
        if self.data is None:
            raise Unsigned(f"the bundle is not signed, and this planrt only runs bundles signed by a trusted "
                           f"key ({self.trust.describe()}); sign it with `planc sign BUNDLE --key KEY`")
        self.envelope = decode_envelope(self.data)
        self.key = self.trust.signer(self.envelope)
        mbytes = manifest()
        signed = signed_resources(self.envelope.payload) or {}
        if mbytes is not None and signed.get(MANIFEST) != hashlib.sha256(mbytes).hexdigest():
            raise SignatureMismatch(f"the bundle changed after key {short(self.key.fingerprint)} signed it: "
                                    f"{MANIFEST} differs from what was signed", member=MANIFEST)

    def verifying(self, check: Callable[[], _Verified]) -> _Verified:
        """Run the bundle's own checks (manifest, manifest bytes, members); with a trusted signature, a
        failure means the bundle changed after it was signed, and says so with the key."""
        try:
            verified = check()
        except BundleError as e:
            if self.key is None or isinstance(e, SignatureMismatch):
                raise
            raise SignatureMismatch(f"the bundle changed after key {short(self.key.fingerprint)} signed it: "
                                    f"{e.message}", member=e.member) from None
        if self.trust is not None and self.envelope is not None and self.key is not None:
            manifest, mbytes, _ = verified
            self.trust.covers(self.key, self.envelope, resources_of(mbytes, validate_members_table(manifest)))
        return verified

    def signer(self) -> Signer | None:
        """Who signed: verified with trust, else what the signature claims (None when unsigned)."""
        if self.key is not None:
            return Signer(self.key.fingerprint, True, self.key.kind, self.key.source.name)
        if self.data is None:
            return None
        try:
            return Signer(decode_envelope(self.data).hint, False)
        except BadSignature:
            return Signer("", False)
