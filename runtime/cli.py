"""The `planrt` command line: run, resume, inspect and serve bundles."""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from collections.abc import Sequence

__all__ = ["main"]

# verb -> the module with add_parser() and run(); `node` brings up Ray nodes, so it lives with the Ray engine.
COMMANDS = {
    "run": "planc.runtime.commands.run",
    "resume": "planc.runtime.commands.resume",
    "inspect": "planc.runtime.commands.inspect",
    "serve": "planc.runtime.commands.serve",
    "node": "planc.runtime.ray.node",
}


def main(argv: Sequence[str] | None = None) -> int:
    from planc import __version__

    parser = argparse.ArgumentParser(prog="planrt", description="Run planc bundles.")
    parser.add_argument("--version", action="version", version=f"planrt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    mods = {}
    for name, module in COMMANDS.items():
        try:
            mods[name] = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name != module:
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
