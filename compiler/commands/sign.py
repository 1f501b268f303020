"""`planc sign BUNDLE --key KEY`: sign a bundle built elsewhere (or re-sign it with a new key)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from planc.compiler.bundle.sign import SignError, SignResult, load_private_key, sign_bundle
from planc.runtime.bundle.format import BundleError

__all__ = ["PASSWORD_ENV", "add_parser", "report_signed", "run", "sign_with", "unlock"]

PASSWORD_ENV = "PLANC_SIGNING_KEY_PASSWORD"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("sign", help="sign a bundle with a private key",
                       description="Sign a bundle (file or directory) in place with a PEM private key (ECDSA "
                                   "P-256/384/521 or Ed25519). The signature covers manifest.json and every "
                                   "member; `planrt --trust PUBKEY` runs only bundles signed by trusted keys. "
                                   f"An encrypted key's password comes from ${PASSWORD_ENV}.")
    p.add_argument("bundle", type=Path, help="NAME.planb or a bundle directory")
    p.add_argument("--key", required=True, type=Path, metavar="KEY.pem", help="the PEM private key")
    p.set_defaults(handler=run)
    return p


def _password() -> bytes | None:
    password = os.environ.get(PASSWORD_ENV)
    return password.encode() if password is not None else None


def unlock(key: Path) -> None:
    """Read the key now: SignError (a ValueError) if it cannot sign."""
    load_private_key(key, _password())


def sign_with(bundle: Path, key: Path) -> SignResult:
    return sign_bundle(bundle, key, password=_password())


def report_signed(res: SignResult) -> None:
    print(f"signed {res.path} with {res.kind} key sha256:{res.fingerprint} (bundle sha256 {res.sha256[:12]})",
          file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    try:
        report_signed(sign_with(args.bundle, args.key))
    except (SignError, BundleError) as e:
        print(f"planc: error: {e}", file=sys.stderr)
        return 1
    except ImportError:
        print("planc: error: signing needs the 'cryptography' package: pip install 'planc[trust]'", file=sys.stderr)
        return 1
    return 0
