"""`planc fmt [--check] [--diff] FILE...`: rewrite plans in canonical layout, keeping comments."""

from __future__ import annotations

import argparse
import difflib
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from planc.compiler.commands.check import check_path, display_path
from planc.dsl.diagnostics import Diagnostic, DiagnosticError, render_all
from planc.dsl.format import format_module

__all__ = ["add_parser", "run", "write_atomic"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "fmt", help="format .plan files in place",
        description="Rewrite .plan files in the canonical layout (comments are kept). With --check, "
                    "change nothing and exit 1 if a file would change; with --diff, print the "
                    "changes instead of writing them. FILE '-' formats stdin to stdout.")
    p.add_argument("files", nargs="+", metavar="FILE", help=".plan files ('-' for stdin)")
    p.add_argument("--check", action="store_true", help="exit 1 and list the files that would change")
    p.add_argument("--diff", action="store_true", help="print a unified diff instead of writing")
    return p


def write_atomic(path: str, text: str) -> None:
    """Replace a file's contents in one step (a crash leaves the old or the new file), keeping its mode."""
    target = Path(path)
    mode = target.stat().st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _format(path: str) -> tuple[str | None, str | None, list[Diagnostic]]:
    """(old text, new text, diagnostics) of one file; '-' is stdin."""
    result = check_path(path, run_checks=False)
    if result.module is None:
        return result.text, None, list(result.diagnostics)
    try:
        return result.text, format_module(result.module), []
    except DiagnosticError as e:
        return result.text, None, list(e.diagnostics)


def run(args: argparse.Namespace) -> int:
    failed, changed, unchanged = 0, [], 0
    for path in args.files:
        name = "<stdin>" if path == "-" else display_path(path)
        old, new, diags = _format(path)
        if new is None:
            print(render_all(diags, {name: old or ""}) + "\n", file=sys.stderr)
            failed += 1
            continue
        if path == "-" and not args.check and not args.diff:
            sys.stdout.write(new)
            continue
        if new == old:
            unchanged += 1
            continue
        changed.append(name)
        if args.diff:
            sys.stdout.writelines(difflib.unified_diff(
                (old or "").splitlines(keepends=True), new.splitlines(keepends=True),
                f"a/{name}", f"b/{name}"))
        if not args.check and not args.diff:
            try:
                write_atomic(path, new)
            except OSError as e:
                print(f"error[E0007]: cannot write '{name}': {e.strerror or e}", file=sys.stderr)
                failed += 1
    return _summary(args, changed, unchanged, failed)


def _summary(args: argparse.Namespace, changed: list[str], unchanged: int, failed: int) -> int:
    if all(p == "-" for p in args.files) and not failed:
        return 1 if args.check and changed else 0
    if args.check:
        for name in changed:
            print(f"would reformat {name}")
    verb = "would be reformatted" if args.check or args.diff else "reformatted"
    parts = [f"{len(changed)} file{'s' if len(changed) != 1 else ''} {verb}",
             f"{unchanged} unchanged"]
    if failed:
        parts.append(f"{failed} failed")
    print(", ".join(parts), file=sys.stderr)
    return 1 if failed or (args.check and changed) else 0
