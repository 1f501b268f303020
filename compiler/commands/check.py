"""`planc check FILE...`: parse and check plans; rustc-style diagnostics, or JSON with --json."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from typing import Any

from planc.compiler.commands.check_types import type_diagnostics, uses_onnx
from planc.dsl.ast import Module
from planc.dsl.check import check
from planc.dsl.diagnostics import Diagnostic, DiagnosticError, Severity, render_all
from planc.dsl.parser import decode_source, parse, read_source

__all__ = ["FileResult", "add_parser", "check_path", "display_path", "run"]


@dataclass(frozen=True, slots=True)
class FileResult:
    """What checking one file gave: its diagnostics, its text (for snippets) and its AST if it parsed."""

    path: str
    diagnostics: tuple[Diagnostic, ...]
    text: str | None = None
    module: Module | None = None

    @property
    def errors(self) -> int:
        return sum(d.is_error for d in self.diagnostics)

    @property
    def warnings(self) -> int:
        return sum(d.severity is Severity.WARNING for d in self.diagnostics)


def display_path(path: str) -> str:
    """A path as it can be printed (undecodable bytes from argv become U+FFFD)."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def check_path(path: str, *, run_checks: bool = True) -> FileResult:
    """Read ('-' is stdin), parse and (unless run_checks is False) check one file.

    Never raises DiagnosticError: every problem is in the result's diagnostics.
    """
    name = "<stdin>" if path == "-" else display_path(path)
    try:
        text = decode_source(sys.stdin.buffer.read(), name) if path == "-" else read_source(path)
    except DiagnosticError as e:
        return FileResult(name, e.diagnostics)
    try:
        module = parse(text, name)
    except DiagnosticError as e:
        return FileResult(name, e.diagnostics, text)
    diags = tuple(check(module)) if run_checks else ()
    if run_checks and not any(d.is_error for d in diags) and any(uses_onnx(p) for p in module.plans):
        diags += tuple(type_diagnostics(module))
    return FileResult(name, diags, text, module)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "check", help="parse and check .plan files",
        description="Parse and check .plan files: names, values, policies, cycles. Prints every "
                    "problem of every file; exits 1 if any file has an error (warnings alone exit 0).")
    p.add_argument("files", nargs="+", metavar="FILE", help=".plan files to check ('-' for stdin)")
    p.add_argument("--json", action="store_true",
                   help="print diagnostics as a JSON array on stdout (for editors and CI)")
    return p


def _to_json(results: list[FileResult]) -> str:
    out = []
    for r in results:
        for d in r.diagnostics:
            item = d.to_dict()
            item.setdefault("file", r.path)
            out.append(item)
    return json.dumps(out, indent=2)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def run(args: argparse.Namespace) -> int:
    results = [check_path(path) for path in args.files]
    errors = sum(r.errors for r in results)
    warnings = sum(r.warnings for r in results)
    if args.json:
        print(_to_json(results))
    else:
        for r in results:
            if r.diagnostics:
                print(render_all(r.diagnostics, {r.path: r.text or ""}) + "\n", file=sys.stderr)
        files = _plural(len(results), "file")
        if errors or warnings:
            print(f"checked {files}: {_plural(errors, 'error')}, {_plural(warnings, 'warning')}",
                  file=sys.stderr)
        else:
            print(f"checked {files}: no problems", file=sys.stderr)
    return 1 if errors else 0
