"""`planc slim NAME.planb --for HOST -o OUT`: the bundle with only the variants one kind of host runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from planc.compiler.bundle.slim import SlimError, slim_bundle
from planc.runtime.bundle.loader import BundleError, load_bundle
from planc.runtime.host.detect import HostSpecError, detect, parse_host_spec

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "slim", help="cut a bundle down to the variants one host kind needs",
        description="Verify a bundle and write a copy holding, for every module, only the variants a "
                    "host of the given kind runs (its best CPU variant, and its best GPU variant when "
                    "it has a GPU), or only the named targets. Weights and tools are kept; the MLIR sources go unless --keep-mlir.")
    p.add_argument("bundle", metavar="NAME.planb", help="bundle file or directory")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--for", dest="host", metavar="HOST",
                   help="a host spec as in PLANRT_HOST, e.g. 'x86_64:x86-64-v3' or "
                        "'x86_64:x86-64-v4;cuda=8.0', or 'native' for this machine")
    g.add_argument("--target", default="", metavar="T1,T2", help="keep exactly these targets")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="the slim bundle (.planb or DIR/)")
    p.add_argument("--sha256", metavar="HEX", help="refuse any bundle but the one with this sha256")
    p.add_argument("--sign", type=Path, metavar="KEY.pem",
                   help="sign the slim bundle with this PEM private key, as `planc compile --sign` does (a "
                        "signature of the input bundle does not carry over: its members change)")
    p.add_argument("--keep-mlir", action="store_true",
                   help="keep the modules' MLIR (for planc tune's recount; planrt never reads it)")
    return p


def run(args: argparse.Namespace) -> int:
    from planc.compiler.bundle.sign import SignError

    try:
        return _run(args)
    except SignError as e:
        print(f"planc: error: {e}", file=sys.stderr)
        return 1
    except ImportError:
        print("planc: error: signing needs the 'cryptography' package: pip install 'planc[trust]'", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    if args.sign is not None:
        from planc.compiler.commands.sign import unlock

        unlock(args.sign)  # a bad key fails before anything is written
    try:
        bundle = load_bundle(args.bundle, sha256=args.sha256)
        host = None
        if args.host:
            host = detect() if args.host == "native" else parse_host_spec(args.host)
        targets = tuple(t.strip() for t in args.target.split(",") if t.strip())
        res = slim_bundle(bundle, args.output, host=host, targets=targets, spec=args.host or "",
                          keep_mlir=args.keep_mlir)
    except BundleError as e:
        print(f"error[{e.code}]: {e.message}\n  --> {args.bundle}", file=sys.stderr)
        return 1
    except (HostSpecError, SlimError) as e:
        print(f"planc: error: {e}", file=sys.stderr)
        return 1
    kept = sorted({t for ts in res.kept.values() for t in ts})
    print(f"wrote {res.path} ({', '.join(kept)}; {res.bytes_after} of {res.bytes_before} member bytes, "
          f"{len(res.dropped)} members dropped, sha256 {res.sha256[:12]})")
    if args.sign is not None:  # the same code path as `planc compile --sign` and `planc sign`
        from planc.compiler.commands.sign import report_signed, sign_with

        report_signed(sign_with(Path(res.path), args.sign))
    return 0
