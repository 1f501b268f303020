"""check(): clean plans stay clean, scopes resolve as documented, every problem in one run."""

from __future__ import annotations

import sys

import pytest
from dsl_helpers import EXAMPLES, ROOT, diagnose, errors, plan, where
from planc.dsl.check import check, has_errors
from planc.dsl.diagnostics import Severity
from planc.dsl.parser import parse, parse_file


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_are_clean(path) -> None:
    assert check(parse_file(path)) == []


def test_every_error_of_a_file_in_one_run_sorted_by_position() -> None:
    text = plan(
        "objective fast",                       # 5: E0105
        "task a = mm(x)",                       # 6: E0103
        "task b = t(y) retry 2 retry 3",         # 7: E0101 y, E0110
        "gate g (a) default maybe",             # 8: E0108 (and W0001: no timeout)
        "output a, b, zz",                      # 9: E0101
    )
    diags = diagnose(text)
    got = [(d.code, where(d)) for d in diags if d.is_error]
    assert got == [("E0105", "5:13"), ("E0103", "6:12"), ("E0101", "7:14"), ("E0110", "7:25"),
                   ("E0108", "8:22"), ("E0101", "9:16")]
    keys = [d.sort_key() for d in diags]
    assert keys == sorted(keys)
    assert has_errors(diags)


@pytest.mark.parametrize(("text", "hint"), [
    (plan("task a = detectr(x)", 'model detector = jax "d.py:f"', "output a"), "did you mean 'detector'?"),
    (plan("task a = m(xs)", "output a"), "did you mean 'x'?"),
    (plan("target x86_64-avx12", "output x"), "did you mean 'x86_64-avx512'?"),
    (plan("objective latncy", "output x"), "did you mean 'latency'?"),
    (plan("task alpha = m(x)", "task b = t(x) after alpah", "output b"), "did you mean 'alpha'?"),
    (plan('model n = jaxx "n.py:f"', "output x"), "did you mean 'jax'?"),
    (plan("task a = t(x) on failure skp", "output a"), "did you mean 'skip'?"),
    (plan("task a = maxx(x)", "output a"), "did you mean 'max'?"),
])
def test_unknown_names_suggest_the_close_one(text: str, hint: str) -> None:
    assert hint in [d.help for d in errors(text)]


def test_duplicate_points_at_the_first_definition() -> None:
    (err,) = errors(plan("task a = m(x)", "task a = m(x)", "output a"))
    assert err.code == "E0102" and where(err) == "6:8"
    ((message, span),) = err.notes
    assert "first defined here" in message and (span.line, span.col) == (5, 8)


def test_loop_body_values_are_visible_outside_but_carries_are_not() -> None:
    ok = plan(
        "loop l max 4 until q > 0.5 {",
        "  carry c = x then r",
        "  task r = m(c, x)",          # carry and outer value resolve inside
        "  task q = mean(r)",
        "  gate inner (r) when q < 2",  # body task from a body gate
        "}",
        "task s = m(r) when q > 0.1",  # body tasks from outside: last values
        "gate g (r) when q < 0.9",
        "task u = t(g) after l",
        "output s, q, u",
    )
    assert [d for d in diagnose(ok) if d.is_error] == []
    bad = ok.replace("task s = m(r)", "task s = m(c)")
    (err,) = errors(bad)
    assert err.code == "E0101" and "only visible inside loop 'l'" in err.message
    assert err.help == "after the loop, 'r' holds the last value"


def test_a_carry_of_another_loop_is_not_visible() -> None:
    text = plan(
        "loop a max 2 until p > 1 {", "  carry c = x then p", "  task p = m(c)", "}",
        "loop b max 2 until q > 1 {", "  task q = m(c)", "}",
        "output p, q")
    (err,) = errors(text)
    assert (err.code, where(err)) == ("E0101", "10:16")


def test_cycle_through_after_of_the_own_loop() -> None:
    text = plan("loop l max 2 until q > 1 {", "  task q = m(x) after l", "}", "output q")
    (err,) = errors(text)
    assert err.code == "E0401" and "l -> q" in err.message


@pytest.mark.parametrize(("text", "code", "pos"), [
    (plan("task a = t(x) backoff 1s..2s", "output a"), "W0001", "5:17"),
    (plan("gate g (x) default approve", "output g"), "W0001", "5:14"),
    (plan("target cuda-sm80, cuda-sm80", "output x"), "W0002", "5:21"),
    (plan('tool unused = exec "u.sh"', "output x", head=("input x: f32[]",)), "W0003", "3:8"),
    ("# nothing here\n", "W0004", "1:1"),
])
def test_warnings_are_not_errors(text: str, code: str, pos: str) -> None:
    diags = diagnose(text)
    warn = [d for d in diags if d.code == code]
    assert warn and warn[0].severity is Severity.WARNING and where(warn[0]) == pos
    assert not has_errors(diags)


def test_prob_on_a_guarded_task_and_expect_within_max_are_fine() -> None:
    text = plan("task a = t(x) when x > 0 prob 0", "task b = t(x) when x > 0 prob 1",
                "loop l max 3 until q > 1 expect 3 {", "  task q = m(x)", "}", "output a, b, q")
    assert errors(text) == []


def test_a_large_generated_plan_checks_clean() -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from parse import generate  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    module = parse(generate(3000), "big.plan")
    assert len(module.plans) > 30
    assert [d for d in check(module) if d.is_error] == []


def test_check_reports_plans_independently() -> None:
    text = plan("output x", name="a") + plan("output y", name="b")
    (err,) = errors(text)
    assert err.code == "E0101" and where(err) == "11:10"
