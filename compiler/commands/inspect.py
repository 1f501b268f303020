"""`planc inspect NAME.planb [--json]`: what a bundle holds, and whether every hash checks."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from planc.runtime.bundle.loader import BundleError, format_summary, load_bundle, summarize

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "inspect", help="show what a bundle holds and verify every member's hash",
        description="Summarize a bundle (file or directory): plan, versions, targets, inputs and "
                    "outputs, tasks, modules and their variants, tools, schedules. Exits 1 if the "
                    "bundle fails verification.")
    p.add_argument("bundle", metavar="NAME.planb", help="bundle file or directory")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    return p


def run(args: argparse.Namespace) -> int:
    try:
        summary = summarize(load_bundle(args.bundle))
    except BundleError as e:
        print(f"error[{e.code}]: {e.message}\n  --> {args.bundle}", file=sys.stderr)
        if args.json:
            print(json.dumps({"ok": False, "error": e.to_json()}, indent=1, sort_keys=True))
        return 1
    if args.json:
        print(json.dumps({"ok": True, **summary}, indent=1, sort_keys=True))
    else:
        sys.stdout.write(format_summary(summary))
    return 0
