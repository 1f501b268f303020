"""The formatter: parse(format(ast)) == ast, idempotence, canonical layout, comments kept."""

from __future__ import annotations

import textwrap

import pytest
from dsl_helpers import EXAMPLES
from dsl_strategies import exprs, modules
from hypothesis import HealthCheck, given, settings
from planc.dsl import ast as A
from planc.dsl.check import check
from planc.dsl.diagnostics import DiagnosticError
from planc.dsl.format import format_expr, format_module
from planc.dsl.parser import parse, parse_file

_SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(modules)
def test_parse_of_format_is_the_same_ast(module: A.Module) -> None:
    text = format_module(module)
    again = parse(text, "generated.plan")
    assert again == module
    assert again.comments == ()  # no '#' inside a string was taken for a comment
    assert format_module(again) == text
    check(again)  # never raises, whatever the names


@settings(max_examples=300, deadline=None)
@given(exprs)
def test_expressions_keep_their_tree(expr: A.Expr) -> None:
    text = f"plan p {{\n  task a = f(x) when {format_expr(expr)}\n}}\n"
    (task,) = parse(text).plans[0].body
    assert task.clauses == (A.When(expr),)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_format_idempotently_and_keep_comments(path) -> None:
    module = parse_file(path)
    once = format_module(module)
    assert parse(once) == module
    assert format_module(parse(once)) == once
    for _, comment in module.comments:
        assert comment in once


MESSY = """\
# header comment


plan   demo{ target x86_64-avx2,cuda-sm80   objective latency
input frame : f32[1,64, 64,3]   # the camera
model det=jax "models.py:detector"
    weights "det.npz"
tool notify = exec "tools/notify.sh"



task pre = det( frame )
task worst = max(pre) # scalar
task alert = notify(worst, "a #1", -2) when worst>0.5 retry 3
  # the policy follows
  backoff 100ms..2s timeout 1.5s
loop polish max 8 until q > 0.95 expect 2 {  # refine
 carry d = pre then r
 task r = det(d)
 task q = mean(r)
} after alert
gate review (worst) when not (worst > 0.9) and (worst < 0.1 or worst > 0.2) timeout 30m default reject
output worst, alert, r
}   # end
"""

CANONICAL = """\
# header comment

plan demo {
  target x86_64-avx2, cuda-sm80
  objective latency
  input frame: f32[1, 64, 64, 3]  # the camera
  model det = jax "models.py:detector" weights "det.npz"
  tool notify = exec "tools/notify.sh"

  task pre = det(frame)
  task worst = max(pre)  # scalar
  # the policy follows
  task alert = notify(worst, "a #1", -2) when worst > 0.5
      retry 3 backoff 100ms..2s timeout 1.5s
  loop polish max 8 until q > 0.95 expect 2 {  # refine
    carry d = pre then r
    task r = det(d)
    task q = mean(r)
  } after alert
  gate review (worst) when not (worst > 0.9) and (worst < 0.1 or worst > 0.2)
      timeout 30m default reject
  output worst, alert, r
}  # end
"""


def test_canonical_layout() -> None:
    module = parse(MESSY)
    assert format_module(module) == CANONICAL
    assert parse(CANONICAL) == module
    assert format_module(parse(CANONICAL)) == CANONICAL


def test_long_policy_lists_wrap_at_clause_boundaries() -> None:
    policies = "retry 4 backoff 50ms..1s timeout 5s breaker 5 per 1m on failure use x cost 80ms after b, c"
    text = f"plan p {{\n  task a = t(x) {policies}\n}}\n"
    out = format_module(parse(text))
    lines = out.splitlines()
    assert lines[1] == "  task a = t(x)"
    cont = lines[2:-1]
    assert len(cont) == 2 and all(ln.startswith("      ") and len(ln) <= 6 + 80 for ln in cont)
    assert " ".join(ln.strip() for ln in cont) == policies
    assert parse(out) == parse(text)


def test_comments_everywhere_survive_twice() -> None:
    text = textwrap.dedent("""\
        plan p { # a
          # b

          # c
          task a = t(x) # d
            # e
            retry 1 # f
          loop l max 2 # g
            until a > 1 { task q = m(a) # h
            # i
          } # j
          # k
        } # l
        plan q {} # m
        # n
        """)
    once = format_module(parse(text))
    assert format_module(parse(once)) == once
    for letter in "abcdefghijklmn":
        assert f"# {letter}" in once
    assert once.count("#") == 14


@pytest.mark.parametrize(("value", "text"), [
    (A.Duration(1e-7, "s"), "timeout 0.0000001s"), (A.Duration(2.0, "m"), "timeout 2.0m"),
    (A.Duration(1e20, "ms"), "timeout 100000000000000000000.0ms"), (A.Duration(7, "h"), "timeout 7h"),
])
def test_durations_are_written_without_exponents(value: A.Duration, text: str) -> None:
    module = A.Module((A.Plan(A.Ident("p"), (A.Task(A.Ident("a"), A.Ident("f"), (), (A.Timeout(value),)),)),))
    out = format_module(module)
    assert text in out and parse(out) == module


def test_unwritable_numbers_are_diagnostics() -> None:
    task = A.Task(A.Ident("a"), A.Ident("f"), (A.Number(float("inf")),))
    with pytest.raises(DiagnosticError) as e:
        format_module(A.Module((A.Plan(A.Ident("p"), (task,)),)))
    assert e.value.diagnostics[0].code == "E0201"


def test_empty_module_formats_to_nothing() -> None:
    assert format_module(parse("")) == ""
    assert format_module(parse("# only a comment\n")) == "# only a comment\n"
