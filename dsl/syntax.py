"""Syntax errors: lark's exceptions turned into Diagnostics that speak in words."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken
from lark.lexer import PatternStr
from planc.dsl import ast as A
from planc.dsl.diagnostics import Diagnostic, did_you_mean

__all__ = ["CLAUSE_KEYWORDS", "STATEMENT_KEYWORDS", "expected_phrase", "syntax_diagnostic"]

# Human names for the named terminals, in the order they are listed.
_WORDS = {
    "NAME": "a name", "NUMBER": "a number", "INT": "an integer", "STRING": "a string",
    "DURATION": "a duration (such as 100ms, 1.5s, 30m or 1h)", "CMP_OP": "a comparison (< <= > >= == !=)",
}
STATEMENT_KEYWORDS = ("target", "objective", "input", "model", "tool", "task", "gate", "loop", "carry",
                      "output")
CLAUSE_KEYWORDS = ("when", "retry", "backoff", "timeout", "breaker", "on", "cost", "after", "prob",
                   "default")
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@functools.cache
def _literals(parser: Lark) -> dict[str, str]:
    """Terminal name -> its literal text, for keywords and punctuation ('GATE' -> 'gate')."""
    return {t.name: t.pattern.value for t in parser.terminals if isinstance(t.pattern, PatternStr)}


def _join_or(parts: list[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " or " + parts[-1]


def expected_phrase(names: Iterable[str], parser: Lark) -> str:
    """'a name, a clause (when, retry, ...) or '}'' for a set of lark terminal names."""
    lits = _literals(parser)
    names = set(names)
    if "NUMBER" in names:
        names.discard("INT")  # an integer is a number; say it once
    classes = [w for n, w in _WORDS.items() if n in names]
    keywords = sorted(lits[n] for n in names if n in lits and _NAME_RE.match(lits[n]))
    punct = sorted(f"'{lits[n]}'" for n in names if n in lits and not _NAME_RE.match(lits[n]))
    unknown = sorted(n for n in names if n not in lits and n not in _WORDS and n != "$END")
    parts = list(classes)
    for title, group in (("a statement", STATEMENT_KEYWORDS), ("a clause", CLAUSE_KEYWORDS)):
        found = [k for k in group if k in keywords]
        if len(found) >= 3:
            parts.append(f"{title} ({', '.join(found)})")
            keywords = [k for k in keywords if k not in found]
    parts += [f"'{k}'" for k in keywords] + punct + unknown
    if "$END" in names:
        parts.append("end of file")
    return _join_or(parts) or "something else"


def _tspan(file: str, tok: Token) -> A.Span:
    line, col = tok.line or 1, tok.column or 1
    return A.Span(file, line, col, tok.end_line or line, tok.end_column or col + max(1, len(tok)))


def _describe(tok: Token, parser: Lark) -> str:
    lits = _literals(parser)
    if tok.type == "NAME":
        return f"name '{tok}'"
    if tok.type in ("INT", "NUMBER"):
        return f"number {tok}"
    if tok.type == "STRING":
        return f"string {tok}"
    if tok.type == "DURATION":
        return f"duration {tok}"
    if tok.type in lits and _NAME_RE.match(lits[tok.type]):
        return f"keyword '{tok}'"
    return f"'{tok}'"


def _end_span(file: str, text: str) -> A.Span:
    """Just after the last non-blank character: where more input was expected."""
    body = text.rstrip()
    line = body.count("\n") + 1
    col = len(body) - (body.rfind("\n") + 1) + 1
    return A.Span(file, line, col, line, col + 1)


def _token_help(tok: Token, expected: set[str], parser: Lark, text: str) -> str:
    lits = _literals(parser)
    pos = tok.start_pos or 0
    if tok.type == "NAME" and tok in ("ms", "s", "m", "h") and pos > 0 and text[pos - 1].isdigit():
        return "a count is a plain integer, without a unit"
    keywords = [lits[n] for n in expected if n in lits and _NAME_RE.match(lits[n])]
    if tok.type == "NAME" and keywords:
        hint = did_you_mean(str(tok), keywords)
        if hint:
            return hint
    if tok.type == "NAME" and "RBRACE" in expected:
        return "statements start with: " + ", ".join(k for k in STATEMENT_KEYWORDS if k != "carry")
    if tok.type == "DURATION" and "INT" in expected:
        return "a count is a plain integer, without a unit"
    if tok.type in ("INT", "NUMBER") and "DURATION" in expected:
        return "a duration needs a unit: ms, s, m or h (for example 2s)"
    return ""


def syntax_diagnostic(e: UnexpectedInput, file: str, text: str, parser: Lark) -> Diagnostic:
    """One Diagnostic for a lark parse error: where, what was found, what was expected."""
    if isinstance(e, UnexpectedEOF) or (isinstance(e, UnexpectedToken) and e.token.type == "$END"):
        exp = expected_phrase(getattr(e, "expected", None) or (), parser)
        return Diagnostic.error("E0003", "unexpected end of file", _end_span(file, text),
                                label=f"expected {exp}")
    if isinstance(e, UnexpectedToken):
        tok = e.token
        expected = set(e.accepts or e.expected or ())
        return Diagnostic.error("E0001", f"unexpected {_describe(tok, parser)}", _tspan(file, tok),
                                label=f"expected {expected_phrase(expected, parser)}",
                                help=_token_help(tok, expected, parser, text))
    assert isinstance(e, UnexpectedCharacters)
    pos = e.pos_in_stream if e.pos_in_stream is not None else -1
    ch = text[pos] if 0 <= pos < len(text) else ""
    span = A.Span(file, e.line, e.column, e.line, e.column + 1)
    exp = expected_phrase(e.allowed, parser) if e.allowed else ""
    label = f"expected {exp}" if exp else ""
    if ch == '"':
        return Diagnostic.error("E0002", "unterminated string", span,
                                label="this string is not closed on its line",
                                help='strings end with " on the same line; write \\n for a line break')
    help_ = "strings use double quotes" if ch == "'" else ""
    return Diagnostic.error("E0002", f"unexpected character {ch!r}", span, label=label, help=help_)
