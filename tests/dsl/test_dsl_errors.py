"""Malformed plans: each gives one known first error, with its code, at an exact line:col."""

from __future__ import annotations

import pytest
from dsl_helpers import errors, plan, where
from planc.dsl.diagnostics import CODES

# (case id, expected code, expected "line:col" of the first error, source)
# plan(...) puts body line i on line 5 + i, indented two spaces (column 3).
CASES: list[tuple[str, str, str, str]] = [
    # -- syntax --------------------------------------------------------------------------------
    ("misspelled-clause", "E0001", "5:17", plan("task a = t(x) retyr 3", "output a")),
    ("missing-brace", "E0001", "2:3", "plan p\n  task a = f(x)\n}\n"),
    ("unterminated-string", "E0002", "3:17", 'plan p {\n  input x: f32[]\n  model m = jax "m.py:f\n}\n'),
    ("stray-character", "E0002", "5:17", plan("task a = t(x) @", "output a")),
    ("single-quotes", "E0002", "3:17", "plan p {\n  input x: f32[]\n  model m = jax 'm.py:f'\n}\n"),
    ("eof-in-plan", "E0003", "2:16", "plan p {\n  task a = f(x)\n"),
    ("eof-after-keyword", "E0003", "1:16", "plan p { output"),
    ("unknown-dtype", "E0106", "2:12", "plan p {\n  input x: f23[1]\n  output x\n}\n"),
    ("bad-escape", "E0005", "5:16", plan('task a = t("a\\qb")', "output a")),
    ("spaced-target-name", "E0001", "2:10", "plan p {\n  target x86_64 - avx2\n  output x\n}\n"),
    ("integer-too-long", "E0201", "5:23", plan("task a = t(x) retry " + "9" * 500, "output a")),
    ("float-overflow", "E0201", "5:17", plan("task a = t(x, 1e999)", "output a")),
    ("duration-overflow", "E0203", "5:25", plan("task a = t(x) timeout 1" + "0" * 308 + "h", "output a")),
    ("count-with-unit", "E0001", "5:24", plan("task a = t(x) retry 3s", "output a")),
    ("duration-without-unit", "E0001", "5:25", plan("task a = t(x) timeout 5", "output a")),
    ("negative-retry", "E0001", "5:23", plan("task a = t(x) retry -1", "output a")),
    ("nested-too-deep", "E0006", "5:26",
     plan("task a = t(x) when " + "not " * 101 + "x", "output a")),
    ("missing-callee-parens", "E0001", "5:14", plan("task a = t x", "output a")),
    # -- unknown names -------------------------------------------------------------------------
    ("unknown-model", "E0103", "5:12", plan("task a = mm(x)", "output a")),
    ("unknown-tool", "E0103", "5:12", plan("task a = notify(x)", "output a")),
    ("unknown-input", "E0101", "5:14", plan("task a = m(xx)", "output a")),
    ("unknown-target", "E0104", "5:23", plan("target x86_64-avx2, x86_64-avx3", "output x")),
    ("unknown-objective", "E0105", "5:13", plan("objective speed", "output x")),
    ("unknown-model-kind", "E0107", "5:13", plan('model n = torch "n.py:f"', "output x")),
    ("unknown-tool-kind", "E0107", "5:12", plan('tool u = shell "u.sh"', "output x")),
    ("unknown-output", "E0101", "5:10", plan("output y")),
    ("unknown-after", "E0101", "5:23", plan("task a = t(x) after nope", "output a")),
    ("unknown-until", "E0101", "5:22",
     plan("loop l max 3 until qq > 1 {", "  task q = m(x)", "}", "output q")),
    ("unknown-gate-value", "E0101", "5:11", plan("gate g (y)", "output g")),
    ("unknown-carry-init", "E0101", "6:15",
     plan("loop l max 3 until q > 1 {", "  carry c = y then q", "  task q = m(c)", "}", "output q")),
    ("unknown-fallback", "E0101", "5:32", plan("task a = t(x) on failure use y", "output a")),
    # -- duplicates ----------------------------------------------------------------------------
    ("duplicate-input-task", "E0102", "5:8", plan("task x = m(x)", "output x")),
    ("duplicate-model-tool", "E0102", "5:8", plan('tool m = exec "m.sh"', "output x")),
    ("duplicate-body-task", "E0102", "7:10",
     plan("task q = m(x)", "loop l max 3 until q > 1 {", "  task q = m(x)", "}", "output q")),
    ("duplicate-carry", "E0102", "7:11",
     plan("loop l max 3 until q > 1 {", "  carry c = x then q", "  carry c = x then q",
          "  task q = m(c)", "}", "output q")),
    ("duplicate-gate-loop", "E0102", "6:8",
     plan("gate g (x)", "loop g max 2 until q > 1 {", "  task q = m(x)", "}", "output q")),
    ("duplicate-output", "E0102", "6:13", plan("task a = m(x)", "output a, a")),
    ("duplicate-plan", "E0114", "5:6", "plan p {\n  input x: f32[]\n  output x\n}\n" * 2),
    ("target-twice", "E0118", "6:3", plan("target x86_64-avx2", "target cuda-sm80", "output x")),
    # -- calls and values ----------------------------------------------------------------------
    ("builtin-two-args", "E0111", "5:12", plan("task a = max(x, x)", "output a")),
    ("builtin-no-args", "E0111", "5:12", plan("task a = mean()", "output a")),
    ("literal-to-model", "E0112", "5:17", plan('task a = m(x, "s")', "output a")),
    ("literal-to-builtin", "E0112", "5:16", plan("task a = sum(3)", "output a")),
    ("index-on-input", "E0112", "5:14", plan("task a = m(x.0)", "output a")),
    ("index-on-builtin", "E0112", "6:14", plan("task a = max(x)", "task b = m(a.1)", "output b")),
    ("model-as-value", "E0112", "5:14", plan("task a = t(m)", "output a")),
    ("call-a-task", "E0112", "6:12", plan("task a = m(x)", "task b = a(x)", "output b")),
    ("after-a-model", "E0112", "5:23", plan("task a = t(x) after m", "output a")),
    ("model-named-builtin", "E0115", "5:9", plan('model max = jax "m.py:g"', "output x")),
    ("carry-used-outside", "E0101", "9:10",
     plan("loop l max 3 until q > 1 {", "  carry c = x then q", "  task q = m(c)", "}", "output c")),
    ("carry-next-outside", "E0404", "7:22",
     plan("task o = m(x)", "loop l max 3 until q > 1 {", "  carry c = x then o", "  task q = m(c)",
          "}", "output q")),
    ("carry-init-inside", "E0404", "6:15",
     plan("loop l max 3 until q > 1 {", "  carry c = q then q", "  task q = m(c)", "}", "output q")),
    ("empty-loop", "E0404", "5:8", plan("loop l max 3 until x > 1 {", "}", "output x")),
    ("cycle", "E0401", "5:8", plan("task a = m(b)", "task b = m(a)", "output a")),
    ("loop-cycle", "E0401", "5:8",
     plan("task a = m(q)", "loop l max 3 until q > 1 {", "  task q = m(a)", "}", "output a")),
    # -- policies ------------------------------------------------------------------------------
    ("bad-failure-action", "E0108", "5:28", plan("task a = t(x) on failure retry_later", "output a")),
    ("use-without-name", "E0116", "5:17", plan("task a = t(x) on failure use", "output a")),
    ("skip-with-name", "E0116", "5:33", plan("task a = t(x) on failure skip x", "output a")),
    ("default-on-task", "E0109", "5:17", plan("task a = t(x) default approve", "output a")),
    ("default-bad-value", "E0108", "5:33", plan("gate g (x) timeout 1m default maybe", "output g")),
    ("retry-on-gate", "E0109", "5:14", plan("gate g (x) retry 2", "output g")),
    ("prob-without-when", "E0109", "5:17", plan("task a = t(x) prob 0.5", "output a")),
    ("prob-above-one", "E0205", "5:33", plan("task a = t(x) when x > 0 prob 1.5", "output a")),
    ("prob-negative", "E0205", "5:33", plan("task a = t(x) when x > 0 prob -0.1", "output a")),
    ("expect-above-max", "E0204", "5:35",
     plan("loop l max 3 until q > 1 expect 4 {", "  task q = m(x)", "}", "output q")),
    ("expect-below-one", "E0204", "5:35",
     plan("loop l max 3 until q > 1 expect 0.5 {", "  task q = m(x)", "}", "output q")),
    ("clause-twice", "E0110", "5:25", plan("task a = t(x) retry 1 retry 2", "output a")),
    ("retry-absurd", "E0201", "5:17", plan("task a = t(x) retry 100000", "output a")),
    ("loop-max-zero", "E0201", "5:14",
     plan("loop l max 0 until q > 1 {", "  task q = m(x)", "}", "output q")),
    ("zero-dimension", "E0202", "5:12", plan("input y: f32[4, 0]", "output y")),
    ("backoff-reversed", "E0204", "5:25", plan("task a = t(x) retry 2 backoff 2s..1s", "output a")),
    ("timeout-zero", "E0203", "5:25", plan("task a = t(x) timeout 0s", "output a")),
    ("timeout-over-a-year", "E0203", "5:25", plan("task a = t(x) timeout 9000h", "output a")),
    ("breaker-zero", "E0201", "5:17", plan("task a = t(x) breaker 0 per 1m", "output a")),
    ("breaker-window-zero", "E0203", "5:31", plan("task a = t(x) breaker 3 per 0ms", "output a")),
    # -- plans and sources ---------------------------------------------------------------------
    ("no-output", "E0113", "1:6", plan("task a = t(x)")),
    ("jax-source-no-function", "E0117", "5:17", plan('model n = jax "n.py"', "output x")),
    ("python-tool-no-file", "E0117", "5:19", plan('tool u = python "notify"', "output x")),
    ("exec-empty-path", "E0117", "5:17", plan('tool u = exec ""', "output x")),
    ("exec-names-function", "E0117", "5:17", plan('tool u = exec "u.py:run"', "output x")),
    ("weights-suffix", "E0117", "5:34", plan('model n = jax "n.py:f" weights "n.pt"', "output x")),
    ("mlir-with-weights", "E0109", "5:35", plan('model n = mlir "n.mlir" weights "n.npz"', "output x")),
    ("mlir-suffix", "E0117", "5:18", plan('model n = mlir "n.txt"', "output x")),
]


def test_at_least_45_cases_with_distinct_ids() -> None:
    ids = [c[0] for c in CASES]
    assert len(ids) >= 45 and len(set(ids)) == len(ids)


@pytest.mark.parametrize(("case", "code", "pos", "text"), CASES, ids=[c[0] for c in CASES])
def test_first_error(case: str, code: str, pos: str, text: str) -> None:
    errs = errors(text)
    assert errs, f"{case}: no error reported"
    first = errs[0]
    assert (first.code, where(first)) == (code, pos), f"{case}: {first.message}"
    assert first.code in CODES
    assert first.message and first.span is not None and first.span.file == "case.plan"
