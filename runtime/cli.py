"""The `planrt` command line: run, resume and inspect bundles."""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from typing import Sequence

__all__ = ["main"]

COMMANDS = ("run", "resume", "inspect", "node")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="planrt", description="Run planc bundles.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    mods = {}
    for name in COMMANDS:
        try:
            mods[name] = importlib.import_module(f"planc.runtime.commands_{name}")
        except ModuleNotFoundError as e:
            if e.name != f"planc.runtime.commands_{name}":
                raise
            continue
        mods[name].add_parser(sub)
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        return int(mods[args.command].run(args))
    except KeyboardInterrupt:
        return 130
    except Exception:  # noqa: BLE001
        print("planrt: internal error (a bug in planrt); please report it with this trace:", file=sys.stderr)
        traceback.print_exc()
        return 70


if __name__ == "__main__":
    sys.exit(main())
