"""Diagnostics: one error type for every stage, rendered the way rustc prints."""

from __future__ import annotations

import difflib
import enum
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from planc.dsl.ast import Span

__all__ = [
    "CODES",
    "Diagnostic",
    "DiagnosticError",
    "Severity",
    "did_you_mean",
    "render",
    "render_all",
    "to_json",
]


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


# Stable codes: E00xx syntax, E01xx names, E02xx values, E03xx types and models,
# E04xx graph structure, E05xx codegen, E9xxx internal; W0xxx warnings. Never
# reuse a number.
CODES: dict[str, str] = {
    "E0001": "syntax error",
    "E0002": "unexpected character",
    "E0003": "unexpected end of file",
    "E0004": "file cannot be read",
    "E0005": "invalid escape in string",
    "E0006": "expression nested too deeply",
    "E0007": "file cannot be written",
    "E0101": "unknown name",
    "E0102": "duplicate name",
    "E0103": "unknown model, tool or builtin",
    "E0104": "unknown target",
    "E0105": "unknown objective",
    "E0106": "unknown dtype",
    "E0107": "unknown model or tool kind",
    "E0108": "unknown policy value",
    "E0109": "clause not allowed here",
    "E0110": "duplicate clause",
    "E0111": "wrong number of arguments",
    "E0112": "value cannot be used here",
    "E0113": "plan has no outputs",
    "E0114": "duplicate plan",
    "E0115": "name shadows a builtin",
    "E0116": "wrong policy argument",
    "E0117": "malformed source path",
    "E0118": "statement given twice",
    "E0201": "invalid number",
    "E0202": "invalid shape",
    "E0203": "invalid duration",
    "E0204": "invalid range",
    "E0205": "invalid probability",
    "E0301": "type mismatch",
    "E0302": "model cannot be loaded",
    "E0303": "model cannot be traced",
    "E0304": "bad model signature",
    "E0305": "non-scalar in expression",
    "E0306": "tuple index out of range",
    "E0307": "weights cannot be loaded",
    "E0308": "tool call does not fit its function",
    "E0309": "tool file cannot be read",
    "E0310": "tool function not found",
    "E0401": "cycle",
    "E0402": "dangling edge",
    "E0403": "unreachable task",
    "E0404": "loop body not closed",
    "E0501": "IREE compile failed",
    "E0601": "bad deployment or profile",
    "E0602": "no device for the plan's targets",
    "E9999": "internal error",
    "W0001": "clause has no effect",
    "W0002": "duplicate target",
    "W0003": "unused declaration",
    "W0004": "file has no plan",
}


@dataclass(frozen=True, slots=True)
class Diagnostic:
    severity: Severity
    code: str
    message: str
    span: Span | None = None
    label: str = ""
    notes: tuple[tuple[str, Span | None], ...] = ()
    help: str = ""

    @classmethod
    def error(cls, code: str, message: str, span: Span | None = None, **kw) -> Diagnostic:
        return cls(Severity.ERROR, code, message, span, **kw)

    @classmethod
    def warning(cls, code: str, message: str, span: Span | None = None, **kw) -> Diagnostic:
        return cls(Severity.WARNING, code, message, span, **kw)

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def sort_key(self) -> tuple:
        s = self.span
        return (s.file, s.line, s.col, self.code) if s else ("", 0, 0, self.code)

    def to_dict(self) -> dict:
        d: dict = {"severity": self.severity.value, "code": self.code, "message": self.message}
        if self.span:
            s = self.span
            d.update(file=s.file, line=s.line, col=s.col, end_line=s.end_line, end_col=s.end_col)
        if self.label:
            d["label"] = self.label
        if self.help:
            d["help"] = self.help
        if self.notes:
            d["notes"] = [{"message": m, **({"file": s.file, "line": s.line, "col": s.col} if s else {})}
                          for m, s in self.notes]
        return d


class DiagnosticError(Exception):
    """Raised by a stage that cannot go on; carries every diagnostic it found."""

    def __init__(self, diagnostics: Sequence[Diagnostic]):
        self.diagnostics = tuple(sorted(diagnostics, key=Diagnostic.sort_key))
        super().__init__("\n".join(d.message for d in self.diagnostics))


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else ""


# One column per character, so that carets stay under what they mark.
_VISIBLE = {c: "?" for c in [*range(9), *range(10, 32), 127]} | {9: " "}


def _source_lines(file: str, sources: dict[str, str], cache: dict[str, list[str]]) -> list[str]:
    if file not in cache:
        text = sources.get(file)
        if text is None:
            try:
                with open(file, encoding="utf-8", errors="replace") as f:
                    text = f.read()
            except (OSError, ValueError):
                text = ""
        # The lexer counts lines by "\n" only; so must we (splitlines also splits at \f, \x1c, ...).
        cache[file] = text.split("\n")
    return cache[file]


def _snippet(span: Span, lines: list[str], label: str, width: int, mark: str = "^") -> list[str]:
    if not 1 <= span.line <= len(lines) or not lines[span.line - 1].strip():
        return []
    line = lines[span.line - 1].rstrip("\r").translate(_VISIBLE)
    end = span.end_col if span.end_line == span.line and span.end_col > span.col else span.col + 1
    if span.end_line > span.line:
        end = max(len(line) + 1, span.col + 1)
    gutter = " " * width
    carets = " " * (span.col - 1) + mark * max(1, end - span.col)
    return [f"{gutter} |", f"{span.line:>{width}} | {line}",
            f"{gutter} | {carets}{(' ' + label) if label else ''}"]


def render(diag: Diagnostic, sources: dict[str, str] | None = None,
           _cache: dict[str, list[str]] | None = None) -> str:
    """rustc-style text: header, location, source line with carets, notes, help."""
    sources = sources or {}
    cache = {} if _cache is None else _cache
    spans = [s for s in (diag.span, *(s for _, s in diag.notes)) if s is not None]
    width = max((len(str(s.line)) for s in spans), default=1)
    out = [f"{diag.severity.value}[{diag.code}]: {diag.message}"]
    if diag.span:
        out.append(f"{' ' * width}--> {diag.span}")
        out += _snippet(diag.span, _source_lines(diag.span.file, sources, cache), diag.label, width)
    for message, span in diag.notes:
        if span:
            out.append(f"note: {message}")
            out.append(f"{' ' * width}--> {span}")
            out += _snippet(span, _source_lines(span.file, sources, cache), "", width, "-")
        else:
            out.append(f"{' ' * width} = note: {message}")
    if diag.help:
        out.append(f"{' ' * width} = help: {diag.help}")
    return "\n".join(out)


def render_all(diags: Sequence[Diagnostic], sources: dict[str, str] | None = None) -> str:
    """All diagnostics in position order, separated by blank lines."""
    cache: dict[str, list[str]] = {}
    return "\n\n".join(render(d, sources, cache) for d in sorted(diags, key=Diagnostic.sort_key))


def to_json(diags: Sequence[Diagnostic]) -> str:
    return json.dumps([d.to_dict() for d in sorted(diags, key=Diagnostic.sort_key)], indent=2)
