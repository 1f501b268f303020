"""`--trust PUBKEY` for planrt's commands: which keys a bundle must be signed by, and the notice when none."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from planc.runtime.api.runs import Bundle
from planc.runtime.api.trust import ENV, Trust, resolve_trust, short

__all__ = ["add_trust_arg", "not_checked", "trust_from"]


def add_trust_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--trust", action="append", default=[], metavar="PUBKEY",
                   help="run only bundles signed by this PEM public key; repeat it, or name a directory of "
                        f"*.pub/*.pem keys, for several (key rotation); default ${ENV} (paths separated by ':'). "
                        "Needs planc[trust]")


def trust_from(args: argparse.Namespace) -> Trust | None:
    """The keys of `--trust`, else of $PLANRT_TRUST; None when neither names any. Raises TrustUnavailable."""
    return resolve_trust(getattr(args, "trust", None) or None)


def not_checked(bundle: Bundle, trust: Trust | None, out: Any = None) -> None:
    """Without trusted keys, say in one line that the signature was not checked (and what it claims)."""
    if trust is not None:
        return
    claim = f" (it claims key {short(bundle.signer.fingerprint)})" if bundle.signer and bundle.signer.fingerprint \
        else " (it is not signed)"
    print(f"planrt: note: bundle signature not checked{claim}; pass --trust PUBKEY or set {ENV} to require one",
          file=out or sys.stderr)
