"""`planrt serve`: serve bundles over the Open Inference Protocol (KServe v2 REST); needs planc[serve]."""

from __future__ import annotations

import argparse
import importlib.util
import logging
import sys
from pathlib import Path
from typing import Any

from planc.runtime.commands.trustargs import add_trust_arg, trust_from

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
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--workers", type=int, default=4, help="requests that run at once (default 4)")
    p.add_argument("--max-queue", type=int, default=64,
                   help="requests that may wait for a worker; beyond them a request gets 503 at once (default 64)")
    p.add_argument("--max-body", type=int, default=64 << 20, metavar="BYTES",
                   help="largest request body (default 64 MiB)")
    p.add_argument("--state-dir", default="planrt-serve", metavar="DIR",
                   help="journals of requests with an Idempotency-Key and the gate audit log (default planrt-serve)")
    p.add_argument("--model-control", choices=("none", "explicit"), default="none",
                   help="explicit: allow POST /v2/repository/models/NAME/load|unload (hot swap); default none")
    add_trust_arg(p)
    p.set_defaults(handler=run)
    return p


def _fail(msg: str) -> int:
    print(f"planrt: error: {msg}", file=sys.stderr)
    return 1


def run(args: argparse.Namespace) -> int:
    missing = [m for m in ("starlette", "uvicorn", "prometheus_client") if importlib.util.find_spec(m) is None]
    if missing:
        return _fail(f"{INSTALL_HINT} (missing: {', '.join(missing)})")
    if args.workers < 1 or args.max_queue < 0 or args.max_body < 1:
        return _fail("--workers must be at least 1, --max-queue at least 0 and --max-body at least 1")
    from planc.runtime.api.errors import BundleError, HostSpecError, NoVariantError
    from planc.runtime.serve.run import serve
    from planc.runtime.serve.server import ServeOptions

    logging.basicConfig(level=logging.WARNING, format="planrt serve: %(message)s")
    try:
        trust = trust_from(args)
    except BundleError as e:
        return _fail(str(e))
    options = ServeOptions(trust=trust, host=args.host, port=args.port, workers=args.workers, max_queue=args.max_queue,
                           max_body=args.max_body, state_dir=Path(args.state_dir), model_control=args.model_control)
    try:
        return serve([Path(b) for b in args.bundles], options)
    except (BundleError, NoVariantError, HostSpecError, ValueError, OSError) as e:
        return _fail(str(e))
