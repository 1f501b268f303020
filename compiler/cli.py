"""The `planc` command line: subcommands are thin adapters over the typed API."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback
from collections.abc import Sequence

__all__ = ["main"]

# name -> module in planc.compiler.commands with add_parser() and run().
COMMANDS: dict[str, str] = {
    "check": "check",
    "fmt": "fmt",
    "compile": "compile",
    "explain": "explain",
    "inspect": "inspect",
    "sign": "sign",
    "slim": "slim",
    "tune": "tune",
    "demo": "demo",
}


def _available() -> dict[str, object]:
    mods: dict[str, object] = {}
    for name, mod in COMMANDS.items():
        try:
            mods[name] = importlib.import_module(f"planc.compiler.commands.{mod}")
        except ModuleNotFoundError as e:
            if e.name != f"planc.compiler.commands.{mod}":
                raise
    return mods


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, object]]:
    from planc import __version__

    parser = argparse.ArgumentParser(prog="planc", description="Ahead-of-time plan optimizer.")
    parser.add_argument("--version", action="version", version=f"planc {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    mods = _available()
    for mod in mods.values():
        mod.add_parser(sub)  # type: ignore[attr-defined]
    return parser, mods


def main(argv: Sequence[str] | None = None) -> int:
    parser, mods = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="planc: %(message)s")
    if not args.command:
        parser.print_help()
        return 2
    try:
        return int(mods[args.command].run(args))  # type: ignore[attr-defined]
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception:  # noqa: BLE001 - the one place that turns bugs into a report
        print("error[E9999]: internal compiler error (this is a bug in planc, not in your plan)\n"
              "  = help: please report it with the command line and this trace:", file=sys.stderr)
        traceback.print_exc()
        return 70


if __name__ == "__main__":
    sys.exit(main())
