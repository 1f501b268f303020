"""Parser: .plan text -> AST, with lark's errors turned into Diagnostics."""

from __future__ import annotations

import functools
from pathlib import Path

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from planc.dsl import ast as A
from planc.dsl.diagnostics import Diagnostic, DiagnosticError

__all__ = ["parse", "parse_file", "grammar"]

# Human names for lark's terminals, used in "expected ..." lists.
_TERMINALS = {
    "NAME": "a name", "INT": "an integer", "NUMBER": "a number", "STRING": "a string",
    "DURATION": "a duration such as 100ms, 2s, 30m or 1h", "CMP_OP": "a comparison operator",
    "LBRACE": "'{'", "RBRACE": "'}'", "LPAR": "'('", "RPAR": "')'", "LSQB": "'['",
    "RSQB": "']'", "COMMA": "','", "COLON": "':'", "EQUAL": "'='", "DOT": "'.'",
    "MINUS": "'-'", "$END": "end of file",
}


@functools.cache
def grammar() -> Lark:
    """The LALR parser, built once per process."""
    return Lark.open(
        str(Path(__file__).with_name("grammar.lark")),
        parser="lalr",
        propagate_positions=True,
        maybe_placeholders=True,
    )


def _tspan(file: str, tok: Token) -> A.Span:
    return A.Span(file, tok.line or 0, tok.column or 0, tok.end_line or tok.line or 0,
                  tok.end_column or (tok.column or 0) + len(tok))


class _Build(Transformer):
    """Builds AST nodes bottom-up; every node gets the span of its rule."""

    def __init__(self, file: str):
        super().__init__()
        self.file = file

    def _span(self, meta) -> A.Span:
        if getattr(meta, "empty", True):
            return A.Span(self.file, 0, 0, 0, 0)
        return A.Span(self.file, meta.line, meta.column, meta.end_line, meta.end_column)

    def _ident(self, tok: Token) -> A.Ident:
        return A.Ident(str(tok), _tspan(self.file, tok))

    def _int(self, tok: Token) -> int:
        return int(tok)

    def _duration(self, tok: Token) -> A.Duration:
        text = str(tok)
        unit = "ms" if text.endswith("ms") else text[-1]
        num = text[: -len(unit)]
        value: float = float(num)
        return A.Duration(int(value) if value.is_integer() and "." not in num else value, unit,
                          _tspan(self.file, tok))

    @v_args(meta=True)
    def start(self, meta, plans):
        return A.Module(tuple(plans), file=self.file)

    @v_args(meta=True)
    def plan(self, meta, c):
        return A.Plan(self._ident(c[0]), tuple(c[1:]), self._span(meta))

    @v_args(meta=True)
    def target(self, meta, c):
        return A.Target(tuple(c), self._span(meta))

    @v_args(meta=True)
    def target_name(self, meta, toks):
        # x86_64-avx2 lexes as NAME '-' NAME; it must be written without spaces.
        text = "-".join(map(str, toks))
        span = self._span(meta)
        if span.end_col - span.col != len(text) or span.end_line != span.line:
            raise _Problem(Diagnostic.error("E0001", "spaces are not allowed inside a target name",
                                            span, help=f"write '{text}'"))
        return A.Ident(text, span)

    @v_args(meta=True)
    def objective(self, meta, c):
        return A.Objective(self._ident(c[0]), self._span(meta))

    @v_args(meta=True)
    def input(self, meta, c):
        return A.Input(self._ident(c[0]), c[1], self._span(meta))

    @v_args(meta=True)
    def tensor_type(self, meta, c):
        dtype_tok = c[0]
        dims = tuple(int(t) for t in c[1:] if t is not None)
        try:
            dtype = A.DType.parse(str(dtype_tok))
        except ValueError as e:
            from planc.dsl.diagnostics import did_you_mean
            raise _Problem(Diagnostic.error(
                "E0106", f"unknown dtype '{dtype_tok}'", _tspan(self.file, dtype_tok),
                label="expected a dtype", help=did_you_mean(str(dtype_tok), [d.value for d in A.DType])
                or str(e).split(", ", 1)[1])) from None
        return A.TensorType(dtype, dims, self._span(meta))

    @v_args(meta=True)
    def model(self, meta, c):
        return A.Model(self._ident(c[0]), self._ident(c[1]), self._string(c[2]), c[3], self._span(meta))

    @v_args(meta=True)
    def weights(self, meta, c):
        return self._string(c[0])

    @v_args(meta=True)
    def tool(self, meta, c):
        return A.Tool(self._ident(c[0]), self._ident(c[1]), self._string(c[2]), c[3], self._span(meta))

    @v_args(meta=True)
    def returns(self, meta, c):
        return c[0]

    def _string(self, tok: Token) -> A.String:
        raw = str(tok)[1:-1]
        value = raw.encode("utf-8").decode("unicode_escape") if "\\" in raw else raw
        return A.String(value, _tspan(self.file, tok))

    @v_args(meta=True)
    def string(self, meta, c):
        return self._string(c[0])

    @v_args(meta=True)
    def task(self, meta, c):
        name, callee, *rest = c
        args = tuple(a for a in rest if not _is_clause(a) and a is not None)
        clauses = tuple(a for a in rest if _is_clause(a))
        return A.Task(self._ident(name), self._ident(callee), args, clauses, self._span(meta))

    @v_args(meta=True)
    def gate(self, meta, c):
        return A.Gate(self._ident(c[0]), c[1], tuple(c[2:]), self._span(meta))

    @v_args(meta=True)
    def loop(self, meta, c):
        name, max_iter, until, expect, *rest = c
        body = tuple(x for x in rest if not _is_clause(x))
        clauses = tuple(x for x in rest if _is_clause(x))
        return A.Loop(self._ident(name), int(max_iter), until, body, expect, clauses, self._span(meta))

    @v_args(meta=True)
    def expect(self, meta, c):
        return c[0]

    @v_args(meta=True)
    def carry(self, meta, c):
        return A.Carry(self._ident(c[0]), c[1], c[2], self._span(meta))

    @v_args(meta=True)
    def output(self, meta, c):
        return A.Output(tuple(c), self._span(meta))

    @v_args(meta=True)
    def when(self, meta, c):
        return A.When(c[0], self._span(meta))

    @v_args(meta=True)
    def retry(self, meta, c):
        return A.Retry(int(c[0]), self._span(meta))

    @v_args(meta=True)
    def backoff(self, meta, c):
        return A.Backoff(self._duration(c[0]), self._duration(c[1]), self._span(meta))

    @v_args(meta=True)
    def timeout(self, meta, c):
        return A.Timeout(self._duration(c[0]), self._span(meta))

    @v_args(meta=True)
    def breaker(self, meta, c):
        return A.Breaker(int(c[0]), self._duration(c[1]), self._span(meta))

    @v_args(meta=True)
    def on_failure(self, meta, c):
        return A.OnFailure(self._ident(c[0]), self._ident(c[1]) if c[1] is not None else None,
                           self._span(meta))

    @v_args(meta=True)
    def cost(self, meta, c):
        return A.Cost(self._duration(c[0]), self._span(meta))

    @v_args(meta=True)
    def after(self, meta, c):
        return A.After(tuple(self._ident(t) for t in c), self._span(meta))

    @v_args(meta=True)
    def prob(self, meta, c):
        return A.Prob(c[0], self._span(meta))

    @v_args(meta=True)
    def default(self, meta, c):
        return A.Default(self._ident(c[0]), self._span(meta))

    @v_args(meta=True)
    def ref(self, meta, c):
        return A.Ref(str(c[0]), int(c[1]) if c[1] is not None else None, self._span(meta))

    @v_args(meta=True)
    def number(self, meta, c):
        tok = c[0]
        value: int | float = int(tok) if tok.type == "INT" else float(tok)
        return A.Number(value, self._span(meta))

    @v_args(meta=True)
    def neg(self, meta, c):
        tok = c[0]
        value: int | float = -int(tok) if tok.type == "INT" else -float(tok)
        return A.Number(value, self._span(meta))

    @v_args(meta=True)
    def or_expr(self, meta, c):
        return A.BoolOp("or", tuple(c), self._span(meta))

    @v_args(meta=True)
    def and_expr(self, meta, c):
        return A.BoolOp("and", tuple(c), self._span(meta))

    @v_args(meta=True)
    def not_(self, meta, c):
        return A.Not(c[0], self._span(meta))

    @v_args(meta=True)
    def compare(self, meta, c):
        return A.Compare(str(c[1]), c[0], c[2], self._span(meta))


_CLAUSES = (A.When, A.Retry, A.Backoff, A.Timeout, A.Breaker, A.OnFailure, A.Cost, A.After,
            A.Prob, A.Default)


def _is_clause(x) -> bool:
    return isinstance(x, _CLAUSES)


class _Problem(Exception):
    def __init__(self, diag: Diagnostic):
        self.diag = diag


def _expected(names) -> str:
    words = sorted({_TERMINALS.get(n, f"'{n.lower()}'" if n.isupper() else n) for n in names})
    if len(words) > 8:
        words = words[:8] + ["..."]
    return ", ".join(words)


def _syntax_diag(e: UnexpectedInput, file: str, text: str) -> Diagnostic:
    if isinstance(e, UnexpectedEOF) or (isinstance(e, UnexpectedToken) and e.token.type == "$END"):
        lines = text.splitlines() or [""]
        line = len(lines)
        col = len(lines[-1]) + 1
        exp = _expected(e.expected) if getattr(e, "expected", None) else "more input"
        return Diagnostic.error("E0003", "unexpected end of file", A.Span(file, line, col, line, col + 1),
                                label=f"expected {exp}")
    if isinstance(e, UnexpectedToken):
        tok = e.token
        span = _tspan(file, tok)
        exp = _expected(e.accepts or e.expected)
        help_ = ""
        if tok.type == "NAME" and "RBRACE" in (e.accepts or e.expected):
            help_ = "statements start with: target, objective, input, model, tool, task, gate, loop, output"
        return Diagnostic.error("E0001", f"unexpected {_describe(tok)}", span,
                                label=f"expected {exp}", help=help_)
    assert isinstance(e, UnexpectedCharacters)
    ch = text[e.pos_in_stream] if e.pos_in_stream < len(text) else ""
    span = A.Span(file, e.line, e.column, e.line, e.column + 1)
    what = "unterminated string" if ch == '"' else f"unexpected character {ch!r}"
    exp = _expected(e.allowed) if e.allowed else ""
    return Diagnostic.error("E0002", what, span, label=f"expected {exp}" if exp else "")


def _describe(tok: Token) -> str:
    if tok.type in ("NAME",):
        return f"name '{tok}'"
    if tok.type in ("INT", "NUMBER"):
        return f"number {tok}"
    if tok.type == "STRING":
        return f"string {tok}"
    if tok.type == "DURATION":
        return f"duration {tok}"
    return f"'{tok}'"


def parse(text: str, file: str = "<string>") -> A.Module:
    """Parse .plan source; raise DiagnosticError (never another exception) on bad input."""
    try:
        tree = grammar().parse(text)
        module = _Build(file).transform(tree)
    except UnexpectedInput as e:
        raise DiagnosticError([_syntax_diag(e, file, text)]) from None
    except VisitError as e:
        if isinstance(e.orig_exc, _Problem):
            raise DiagnosticError([e.orig_exc.diag]) from None
        raise
    return A.Module(module.plans, _comments(text), file)


def _comments(text: str) -> tuple[tuple[int, str], ...]:
    """(line, text) of every comment; the grammar drops them, the formatter keeps them."""
    found = []
    for i, line in enumerate(text.splitlines(), 1):
        pos = _comment_start(line)
        if pos is not None:
            found.append((i, line[pos:].rstrip()))
    return tuple(found)


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


def parse_file(path: str | Path) -> A.Module:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DiagnosticError([Diagnostic.error("E0004", f"cannot read '{p}': {e}")]) from None
    return parse(text, str(path))
