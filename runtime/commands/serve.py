"""`planrt serve`: serve bundles over the Open Inference Protocol (KServe v2 REST); needs planc[serve]."""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any

from planc.runtime.commands.trustargs import add_trust_arg, trust_from
from planc.runtime.serve.auth import ENV, AuthError, Tokens, is_loopback

__all__ = ["add_parser", "run"]

INSTALL_HINT = ("planrt serve needs the 'serve' extra (starlette, uvicorn, prometheus-client): "
                "pip install 'planc[serve]'")


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("serve", help="serve bundles over HTTP (Open Inference Protocol)",
                       description="Serve bundles as models over the Open Inference Protocol (KServe v2 REST), "
                                   "so Triton and KServe clients work unchanged (docs/serving.md).")
    p.add_argument("bundles", nargs="+", metavar="BUNDLE", help="NAME.planb files or bundle directories; "
                   "each is served as the model named by its plan")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=port, default=8000, help="port, 0 to 65535 (default 8000; 0: any free one)")
    p.add_argument("--workers", type=int, default=4, help="requests that run at once (default 4)")
    p.add_argument("--max-queue", type=int, default=64,
                   help="requests that may wait for a worker; beyond them a request gets 503 at once (default 64)")
    p.add_argument("--max-body", type=size, default=64 << 20, metavar="SIZE",
                   help="largest request body: bytes, or with a unit (KiB, MiB, GiB, KB, MB, GB); default 64MiB")
    p.add_argument("--body-timeout", type=seconds, default=30.0, metavar="SECONDS",
                   help="a request whose body is not all in after this long gets 408 (default 30)")
    p.add_argument("--drain-timeout", type=seconds, default=30.0, metavar="SECONDS",
                   help="after SIGTERM, how long in-flight requests may take before the server exits anyway "
                        "(default 30)")
    p.add_argument("--max-waiting", type=int, default=64, metavar="N",
                   help="runs that may wait at review gates (they hold no worker); a gate beyond them takes "
                        "its default at once (default 64)")
    p.add_argument("--auth-file", metavar="FILE",
                   help=f"bearer tokens, lines 'NAME ROLE[,ROLE] TOKEN', roles infer, review, admin (or the same "
                        f"lines in ${ENV}); without either only loopback addresses are served")
    p.add_argument("--insecure", action="store_true",
                   help="serve a non-loopback address without authentication (anyone who reaches it may infer, "
                        "decide gates and, with --model-control explicit, load bundles)")
    p.add_argument("--repository-dir", metavar="DIR",
                   help="with --model-control explicit: the only directory bundles are loaded from")
    p.add_argument("--keep-runs", type=seconds, default=None, metavar="SECONDS",
                   help="delete keyed runs (Idempotency-Key journals) older than this (default: keep them)")
    p.add_argument("--state-dir", default="planrt-serve", metavar="DIR",
                   help="journals of requests with an Idempotency-Key and the gate audit log (default planrt-serve)")
    p.add_argument("--model-control", choices=("none", "explicit"), default="none",
                   help="explicit: allow POST /v2/repository/models/NAME/load|unload (hot swap); default none")
    add_trust_arg(p)
    p.set_defaults(handler=run)
    return p


def _tokens(path: str | None) -> Tokens | None:
    if path is not None:
        return Tokens.parse(Path(path).read_text(), path)
    if os.environ.get(ENV, "").strip():
        return Tokens.parse(os.environ[ENV], "$" + ENV)
    return None


def port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port: expected a number from 0 to 65535")
    return int(text)


_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1 << 10, "m": 1000**2, "mb": 1000**2, "mib": 1 << 20,
          "g": 1000**3, "gb": 1000**3, "gib": 1 << 30}


def size(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+)\s*([a-zA-Z]*)\s*", text)
    if m is None or m.group(2).lower() not in _UNITS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size: expected bytes, or a number with KiB, MiB, "
                                         "GiB, KB, MB or GB (64MiB)")
    return int(m.group(1)) * _UNITS[m.group(2).lower()]


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration: expected a positive number of seconds")
    return value


def _fail(msg: str) -> int:
    print(f"planrt: error: {msg}", file=sys.stderr)
    return 1


def run(args: argparse.Namespace) -> int:
    missing = [m for m in ("starlette", "uvicorn", "prometheus_client") if importlib.util.find_spec(m) is None]
    if missing:
        return _fail(f"{INSTALL_HINT} (missing: {', '.join(missing)})")
    if args.workers < 1 or args.max_queue < 0 or args.max_body < 1 or args.max_waiting < 0:
        return _fail("--workers must be at least 1, --max-queue and --max-waiting at least 0 and --max-body "
                     "at least 1")
    try:
        tokens = _tokens(args.auth_file)
    except (AuthError, OSError) as e:
        return _fail(str(e))
    if tokens is None and not is_loopback(args.host) and not args.insecure:
        return _fail(f"refusing to serve {args.host} without authentication: give --auth-file FILE (or ${ENV}), "
                     "or --insecure to serve it open")
    if args.model_control == "explicit" and args.repository_dir is None:
        return _fail("--model-control explicit needs --repository-dir DIR: the directory bundles may be loaded from")
    from planc.runtime.api.errors import BundleError, HostSpecError, NoVariantError
    from planc.runtime.serve.run import serve
    from planc.runtime.serve.server import ServeOptions

    logging.basicConfig(level=logging.WARNING, format="planrt serve: %(message)s")
    try:
        trust = trust_from(args)
    except BundleError as e:
        return _fail(str(e))
    options = ServeOptions(trust=trust, host=args.host, port=args.port, workers=args.workers, max_queue=args.max_queue,
                           max_body=args.max_body, state_dir=Path(args.state_dir), model_control=args.model_control,
                           body_timeout=args.body_timeout, drain_timeout=args.drain_timeout,
                           max_waiting=args.max_waiting, tokens=tokens, keep_runs=args.keep_runs,
                           repository_dir=Path(args.repository_dir) if args.repository_dir else None)
    try:
        return serve([Path(b) for b in args.bundles], options)
    except (BundleError, NoVariantError, HostSpecError, ValueError, OSError) as e:
        return _fail(str(e))
