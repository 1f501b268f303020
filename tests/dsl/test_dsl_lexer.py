"""Lexer-level details: durations, target names, numbers, refs, comments, and error wording."""

from __future__ import annotations

import re

import pytest
from dsl_helpers import plan, where
from planc.dsl import ast as A
from planc.dsl.diagnostics import DiagnosticError
from planc.dsl.parser import decode_source, parse


def _task(text: str) -> A.Task:
    (p,) = parse(plan(text, "output a")).plans
    return next(s for s in p.body if isinstance(s, A.Task))


@pytest.mark.parametrize(("text", "value", "unit", "seconds"), [
    ("1.5s", 1.5, "s", 1.5), ("100ms", 100, "ms", 0.1), ("30m", 30, "m", 1800.0), ("1h", 1, "h", 3600.0),
    ("0.25h", 0.25, "h", 900.0), ("2s", 2, "s", 2.0),
])
def test_durations(text: str, value: float, unit: str, seconds: float) -> None:
    (clause,) = _task(f"task a = t(x) timeout {text}").clauses
    assert isinstance(clause, A.Timeout)
    d = clause.duration
    assert (d.value, d.unit) == (value, unit) and d.seconds == pytest.approx(seconds)
    assert isinstance(d.value, int) == ("." not in text)


def test_backoff_range_lexes_as_two_durations() -> None:
    (clause,) = _task("task a = t(x) backoff 1.5s..2m").clauses
    assert clause == A.Backoff(A.Duration(1.5, "s"), A.Duration(2, "m"))


def test_target_names_with_dashes_and_digits() -> None:
    (p,) = parse("plan p {\n  target x86_64-avx2, x86_64-avx512, aarch64-neon, cuda-sm80, vmvx\n}\n").plans
    (target,) = p.body
    assert [i.name for i in target.names] == ["x86_64-avx2", "x86_64-avx512", "aarch64-neon", "cuda-sm80",
                                              "vmvx"]
    assert where_span(target.names[1].span) == "2:23"


def where_span(span: A.Span) -> str:
    return f"{span.line}:{span.col}"


def test_negative_numbers_in_expressions_and_args() -> None:
    t = _task("task a = t(x, -3, -0.5, 2e3) when x > -1.5 and -2 < x")
    assert [a.value for a in t.args[1:]] == [-3, -0.5, 2000.0]
    (when,) = t.clauses
    left, right = when.expr.operands
    assert left == A.Compare(">", A.Ref("x"), A.Number(-1.5))
    assert right == A.Compare("<", A.Number(-2), A.Ref("x"))


def test_tuple_part_refs() -> None:
    t = _task("task a = t(x.0, x.12) when x.1 > 0")
    assert t.args == (A.Ref("x", 0), A.Ref("x", 12))
    assert t.clauses[0].expr.left == A.Ref("x", 1)


def test_hash_inside_a_string_is_not_a_comment() -> None:
    text = plan('task a = t("issue #42", "a\\"#b")  # real comment', "output a")
    module = parse(text)
    task = module.plans[0].body[3]
    assert [a.value for a in task.args] == ["issue #42", 'a"#b']
    assert module.comments == ((5, "# real comment"),)
    assert module.trailing_comment_lines == frozenset({5})


def test_whole_line_and_trailing_comments_are_told_apart() -> None:
    module = parse("# head\nplan p {  # brace\n  # inside\n}\n")
    assert [c[0] for c in module.comments] == [1, 2, 3]
    assert module.trailing_comment_lines == frozenset({2})


def test_string_escapes() -> None:
    t = _task('task a = t("tab\\there\\nline \\\\ \\"q\\"", "ünï")')
    assert [a.value for a in t.args] == ['tab\there\nline \\ "q"', "ünï"]


def test_crlf_bom_and_tabs_keep_positions() -> None:
    text = "\ufeffplan p {\r\n\tinput x: f32[]\r\n\ttask a = mm(x)\r\n\toutput a\r\n}\r\n"
    module = parse(decode_source(text.encode("utf-8"), "crlf.plan"), "crlf.plan")
    from planc.dsl.check import check
    (err,) = [d for d in check(module) if d.is_error]
    assert err.code == "E0103" and where(err) == "3:11"


def test_keywords_are_names_where_only_a_name_fits() -> None:
    (p,) = parse("plan task {\n  input max: f32[]\n  task when = mean(max)\n  output when\n}\n").plans
    assert p.name.name == "task" and p.body[1].name.name == "when"


def _syntax(text: str):
    with pytest.raises(DiagnosticError) as e:
        parse(text)
    (d,) = e.value.diagnostics
    return d


def test_expected_tokens_read_as_words() -> None:
    d = _syntax(plan("task a = t(x) retyr 3", "output a"))
    assert d.label.startswith("expected a statement (target, objective, input, model, tool, task, gate,")
    assert "a clause (when, retry, backoff, timeout, breaker, on, cost, after, prob, default)" in d.label
    assert d.label.endswith(" or '}'")
    assert d.help == "did you mean 'retry'?"
    for text in [plan("task a = t(x) backoff 1s 2s"), "plan p { gate g (x) when }", "plan p { input x f32 }",
                 "plan p { loop l max 2 until x", "plan p { task a = t(x) on }", "plan { }"]:
        label = _syntax(text).label
        assert label.startswith("expected "), label
        assert not re.search(r"__ANON|\b[A-Z]{2,}\b|\$END", label), label


def test_backoff_separator_is_named() -> None:
    d = _syntax(plan("task a = t(x) backoff 1s 2s"))
    assert (d.code, where(d), d.label) == ("E0001", "5:28", "expected '..'")


def test_unexpected_keyword_is_called_a_keyword() -> None:
    d = _syntax("plan p { input x: f32[] when x }")
    assert d.message == "unexpected keyword 'when'"
    d = _syntax("plan p { task a = f(x) when }")
    assert d.message == "unexpected '}'" and "a name" in d.label and "a number" in d.label


def test_non_utf8_names_the_byte_and_line() -> None:
    with pytest.raises(DiagnosticError) as e:
        decode_source(b"plan p {\n  \xff\n}", "bad.plan")
    (d,) = e.value.diagnostics
    assert d.code == "E0004" and "0xff" in d.message and "line 2" in d.message
    assert d.span is not None and (d.span.line, d.span.col) == (2, 3)  # found by scripts/soak.py: no span


def test_non_utf8_after_a_bom_names_the_right_byte() -> None:
    # Found by scripts/soak.py: with a BOM, the message named the byte after the bad one.
    with pytest.raises(DiagnosticError) as e:
        decode_source("\ufeffplan caf\u00e9".encode() + b"\xe9 {}", "bad.plan")
    (d,) = e.value.diagnostics
    assert "byte 0xe9 on line 1" in d.message
    assert d.span is not None and (d.span.line, d.span.col) == (1, 10)  # after 'plan café', BOM not counted
