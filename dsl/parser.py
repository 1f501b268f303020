"""Parser: .plan text -> AST, with lark's errors turned into Diagnostics."""

from __future__ import annotations

import contextlib
import functools
import gc
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedInput
from planc.dsl import ast as A
from planc.dsl.diagnostics import Diagnostic, DiagnosticError, did_you_mean
from planc.dsl.syntax import syntax_diagnostic

__all__ = ["MAX_EXPR_DEPTH", "decode_source", "grammar", "parse", "parse_file", "read_source"]

# Deeper expressions are refused, so that every later stage may recurse over them.
MAX_EXPR_DEPTH = 100
_MAX_DIGITS = 400  # longer integers are refused before Python converts them
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n", "t": "\t", "r": "\r"}


@functools.cache
def grammar() -> Lark:
    """The LALR parser, built once per process."""
    return Lark.open(
        str(Path(__file__).with_name("grammar.lark")),
        parser="lalr",
        propagate_positions=True,
        maybe_placeholders=True,
    )


class _Problem(Exception):
    def __init__(self, diag: Diagnostic):
        self.diag = diag


def _tspan(file: str, tok: Token) -> A.Span:
    line, col = tok.line or 0, tok.column or 0
    return A.Span(file, line, col, tok.end_line or line, tok.end_column or col + len(tok))


def _parse_int(tok: Token, file: str) -> int:
    if len(tok) > _MAX_DIGITS:
        raise _Problem(Diagnostic.error("E0201", f"integer with {len(tok)} digits is too large",
                                        _tspan(file, tok), label="too many digits"))
    return int(tok)


def _parse_float(tok: Token, file: str) -> float:
    value = float(tok)
    if not math.isfinite(value) or len(tok) > _MAX_DIGITS:
        raise _Problem(Diagnostic.error("E0201", f"number {tok} is out of range", _tspan(file, tok),
                                        label="does not fit a 64-bit float"))
    return value


class _Build:
    """Builds AST nodes bottom-up from lark's tree; every node gets its rule's span.

    Each rule has a method (meta, children) -> node. The walk is iterative, so deep input
    cannot overflow Python's stack, and it calls the methods directly (lark's Transformer
    wraps every call, which costs a third of the parse).
    """

    def __init__(self, file: str):
        self.file = file
        self._depth: dict[int, int] = {}  # id(expression node) -> nesting depth

    def transform(self, tree: Tree) -> Any:
        order: list[Any] = []
        todo: list[Any] = [tree]
        while todo:  # reversed post-order: a node before its children, children right to left
            node = todo.pop()
            order.append(node)
            if isinstance(node, Tree):
                todo += node.children
        stack: list[Any] = []
        for node in reversed(order):
            if isinstance(node, Tree):
                n = len(node.children)
                args = stack[len(stack) - n:] if n else []
                del stack[len(stack) - n:]
                stack.append(getattr(self, node.data)(node.meta, args))
            else:
                stack.append(node)
        return stack[0]

    def _span(self, meta: Any) -> A.Span:
        if getattr(meta, "empty", True):
            return A.Span(self.file, 0, 0, 0, 0)
        return A.Span(self.file, meta.line, meta.column, meta.end_line, meta.end_column)

    def _ident(self, tok: Token) -> A.Ident:
        return A.Ident(str(tok), _tspan(self.file, tok))

    def _duration(self, tok: Token) -> A.Duration:
        text = str(tok)
        unit = "ms" if text.endswith("ms") else text[-1]
        num = Token("NUMBER", text[: -len(unit)], line=tok.line, column=tok.column,
                    end_line=tok.end_line, end_column=tok.end_column)
        value: int | float = _parse_float(num, self.file) if "." in num else _parse_int(num, self.file)
        dur = A.Duration(value, unit, _tspan(self.file, tok))
        try:
            seconds = float(value) * A.DURATION_UNITS[unit]
        except OverflowError:
            seconds = math.inf
        if not math.isfinite(seconds):
            raise _Problem(Diagnostic.error("E0203", f"duration {text} is too long", dur.span,
                                            label="overflows a 64-bit float of seconds"))
        return dur

    def _string(self, tok: Token) -> A.String:
        raw = str(tok)[1:-1]
        if "\\" not in raw:
            return A.String(raw, _tspan(self.file, tok))
        out, i = [], 0
        while i < len(raw):
            ch = raw[i]
            if ch == "\\":
                nxt = raw[i + 1]  # the lexer guarantees a character after a backslash
                if nxt not in _ESCAPES:
                    col = (tok.column or 0) + 1 + i
                    raise _Problem(Diagnostic.error(
                        "E0005", f"unknown escape sequence '\\{nxt}' in string",
                        A.Span(self.file, tok.line or 0, col, tok.line or 0, col + 2),
                        help="known escapes: \\\\ \\\" \\n \\t \\r"))
                out.append(_ESCAPES[nxt])
                i += 2
            else:
                out.append(ch)
                i += 1
        return A.String("".join(out), _tspan(self.file, tok))

    def _expr(self, node: Any, children: list) -> Any:
        depth = 1 + max((self._depth.get(id(c), 1) for c in children), default=0)
        if depth > MAX_EXPR_DEPTH:
            raise _Problem(Diagnostic.error("E0006", "expression is nested too deeply", node.span,
                                            label=f"more than {MAX_EXPR_DEPTH} levels",
                                            help="split it into smaller tasks"))
        self._depth[id(node)] = depth
        return node

    def start(self, meta, plans):
        return tuple(plans)

    def plan(self, meta, c):
        return A.Plan(self._ident(c[0]), tuple(c[1:]), self._span(meta))

    def target(self, meta, c):
        return A.Target(tuple(c), self._span(meta))

    def target_name(self, meta, toks):
        # x86_64-avx2 lexes as NAME '-' NAME; it must be written without spaces.
        text = "-".join(map(str, toks))
        span = self._span(meta)
        if span.end_col - span.col != len(text) or span.end_line != span.line:
            raise _Problem(Diagnostic.error("E0001", "spaces are not allowed inside a target name",
                                            span, help=f"write '{text}'"))
        return A.Ident(text, span)

    def objective(self, meta, c):
        return A.Objective(self._ident(c[0]), self._span(meta))

    def input(self, meta, c):
        return A.Input(self._ident(c[0]), c[1], self._span(meta))

    def tensor_type(self, meta, c):
        dtype_tok = c[0]
        dims = tuple(_parse_int(t, self.file) for t in c[1:] if t is not None)
        try:
            dtype = A.DType.parse(str(dtype_tok))
        except ValueError:
            names = [d.value for d in A.DType]
            raise _Problem(Diagnostic.error(
                "E0106", f"unknown dtype '{dtype_tok}'", _tspan(self.file, dtype_tok),
                label="expected a dtype",
                help=did_you_mean(str(dtype_tok), names) or f"dtypes: {', '.join(names)}")) from None
        return A.TensorType(dtype, dims, self._span(meta))

    def model(self, meta, c):
        return A.Model(self._ident(c[0]), self._ident(c[1]), self._string(c[2]), c[3], self._span(meta))

    def weights(self, meta, c):
        return self._string(c[0])

    def tool(self, meta, c):
        return A.Tool(self._ident(c[0]), self._ident(c[1]), self._string(c[2]), c[3], self._span(meta))

    def returns(self, meta, c):
        return c[0]

    def string(self, meta, c):
        return self._string(c[0])

    def task(self, meta, c):
        name, callee, *rest = c
        args = tuple(a for a in rest if not _is_clause(a) and a is not None)
        clauses = tuple(a for a in rest if _is_clause(a))
        return A.Task(self._ident(name), self._ident(callee), args, clauses, self._span(meta))

    def gate(self, meta, c):
        return A.Gate(self._ident(c[0]), c[1], tuple(c[2:]), self._span(meta))

    def loop(self, meta, c):
        name, max_tok, until, expect, *rest = c
        body = tuple(x for x in rest if not _is_clause(x))
        clauses = tuple(x for x in rest if _is_clause(x))
        return A.Loop(self._ident(name), _parse_int(max_tok, self.file), until, body, expect, clauses,
                      self._span(meta), _tspan(self.file, max_tok))

    def expect(self, meta, c):
        return c[0]

    def carry(self, meta, c):
        return A.Carry(self._ident(c[0]), c[1], c[2], self._span(meta))

    def output(self, meta, c):
        return A.Output(tuple(c), self._span(meta))

    def when(self, meta, c):
        return A.When(c[0], self._span(meta))

    def retry(self, meta, c):
        return A.Retry(_parse_int(c[0], self.file), self._span(meta))

    def backoff(self, meta, c):
        return A.Backoff(self._duration(c[0]), self._duration(c[1]), self._span(meta))

    def timeout(self, meta, c):
        return A.Timeout(self._duration(c[0]), self._span(meta))

    def breaker(self, meta, c):
        return A.Breaker(_parse_int(c[0], self.file), self._duration(c[1]), self._span(meta))

    def on_failure(self, meta, c):
        return A.OnFailure(self._ident(c[0]), self._ident(c[1]) if c[1] is not None else None,
                           self._span(meta))

    def cost(self, meta, c):
        return A.Cost(self._duration(c[0]), self._span(meta))

    def after(self, meta, c):
        return A.After(tuple(self._ident(t) for t in c), self._span(meta))

    def prob(self, meta, c):
        return A.Prob(c[0], self._span(meta))

    def default(self, meta, c):
        return A.Default(self._ident(c[0]), self._span(meta))

    def ref(self, meta, c):
        index = _parse_int(c[1], self.file) if c[1] is not None else None
        return A.Ref(str(c[0]), index, self._span(meta))

    def number(self, meta, c):
        tok = c[0]
        value = _parse_int(tok, self.file) if tok.type == "INT" else _parse_float(tok, self.file)
        return A.Number(value, self._span(meta))

    def neg(self, meta, c):
        tok = c[0]
        value = _parse_int(tok, self.file) if tok.type == "INT" else _parse_float(tok, self.file)
        return A.Number(-value, self._span(meta))

    def or_expr(self, meta, c):
        return self._expr(A.BoolOp("or", tuple(c), self._span(meta)), c)

    def and_expr(self, meta, c):
        return self._expr(A.BoolOp("and", tuple(c), self._span(meta)), c)

    def not_(self, meta, c):
        return self._expr(A.Not(c[0], self._span(meta)), c)

    def compare(self, meta, c):
        return self._expr(A.Compare(str(c[1]), c[0], c[2], self._span(meta)), [c[0], c[2]])


_CLAUSES = (A.When, A.Retry, A.Backoff, A.Timeout, A.Breaker, A.OnFailure, A.Cost, A.After,
            A.Prob, A.Default)


def _is_clause(x: object) -> bool:
    return isinstance(x, _CLAUSES)


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic GC while building: trees and ASTs hold no cycles, and its passes over
    the fast-growing heap cost a third of a large parse. Restores the previous state."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def parse(text: str, file: str = "<string>") -> A.Module:
    """Parse .plan source; raise DiagnosticError (never another exception) on bad input."""
    parser = grammar()
    with _no_gc():
        try:
            tree = parser.parse(text)
        except UnexpectedInput as e:
            raise DiagnosticError([syntax_diagnostic(e, file, text, parser)]) from None
        try:
            plans = _Build(file).transform(tree)
        except _Problem as e:
            raise DiagnosticError([e.diag]) from None
    comments, trailing = _comments(text)
    return A.Module(plans, comments, file, trailing)


def _comments(text: str) -> tuple[tuple[tuple[int, str], ...], frozenset[int]]:
    """Every comment as (line, text), and the lines where it follows code; the grammar drops them."""
    found: list[tuple[int, str]] = []
    trailing: set[int] = set()
    if "#" not in text:
        return (), frozenset()
    for i, line in enumerate(text.split("\n"), 1):
        if "#" not in line:
            continue
        pos = line.index("#") if '"' not in line else _comment_start(line)
        if pos is not None:
            found.append((i, line[pos:].rstrip()))
            if line[:pos].strip():
                trailing.add(i)
    return tuple(found), frozenset(trailing)


def _comment_start(line: str) -> int | None:
    in_str = False
    esc = False
    for i, ch in enumerate(line):
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch == "#":
            return i
    return None


def decode_source(data: bytes, file: str) -> str:
    """UTF-8 bytes (a leading BOM is dropped) -> text; E0004 names the first bad byte."""
    data = data.removeprefix(b"\xef\xbb\xbf")  # positions below count from after the BOM, as the lexer's do
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        # The column as the snippet shows the line: decoded with U+FFFD for each bad sequence.
        col = len(data[data.rfind(b"\n", 0, e.start) + 1 : e.start].decode("utf-8", "replace")) + 1
        raise DiagnosticError([Diagnostic.error(
            "E0004", f"cannot read '{file}': not valid UTF-8 (byte 0x{data[e.start]:02x} on line {line})",
            A.Span(file, line, col, line, col + 1), label="not UTF-8",
            help="save the file as UTF-8")]) from None


def read_source(path: str | Path) -> str:
    """The text of a .plan file; E0004 (never OSError) for a missing, unreadable or binary file."""
    p = Path(path)
    try:
        if p.is_dir():
            raise IsADirectoryError("it is a directory")
        data = p.read_bytes()
    except (OSError, ValueError) as e:
        reason = getattr(e, "strerror", None) or str(e)
        raise DiagnosticError([Diagnostic.error("E0004", f"cannot read '{path}': {reason}")]) from None
    return decode_source(data, str(path))


def parse_file(path: str | Path) -> A.Module:
    """Read and parse one .plan file; every problem is a DiagnosticError."""
    return parse(read_source(path), str(path))
