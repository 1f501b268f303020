"""Trusted keys as commands/ and serve/ see them (`--trust`, `PLANRT_TRUST`; docs/bundle.md, Signatures)."""

from planc.runtime.bundle.signature import Signer, short
from planc.runtime.bundle.trust import ENV, Trust, resolve_trust

__all__ = ["ENV", "Signer", "Trust", "resolve_trust", "short"]
