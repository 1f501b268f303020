"""Fuzzing the front end: mutated example plans give Diagnostics, never another exception."""

from __future__ import annotations

import random
import re

import pytest
from dsl_helpers import EXAMPLES
from planc.dsl.check import check
from planc.dsl.diagnostics import CODES, Diagnostic, DiagnosticError, render_all
from planc.dsl.format import format_module
from planc.dsl.parser import decode_source, parse

SEEDS = [p.read_bytes() for p in EXAMPLES]
N_BYTE = 2600
N_TOKEN = 2600

_TOKEN = re.compile(rb'"(?:[^"\\\n]|\\.)*"|#[^\n]*|\d+(?:\.\d+)?(?:ms|s|m|h)?|[A-Za-z_]\w*'
                    rb"|\.\.|[<>=!]=|\s+|.", re.DOTALL)
_VOCAB = [
    b"plan", b"target", b"objective", b"input", b"model", b"tool", b"task", b"gate", b"loop", b"carry",
    b"output", b"when", b"retry", b"backoff", b"timeout", b"breaker", b"per", b"on", b"failure", b"cost",
    b"after", b"prob", b"default", b"max", b"until", b"expect", b"then", b"weights", b"returns", b"and",
    b"or", b"not", b"{", b"}", b"(", b")", b"[", b"]", b",", b":", b"=", b".", b"..", b"-", b"<", b">=",
    b"==", b"0", b"-1", b"0.5", b"1e999", b"9" * 500, b"0s", b"1.5s", b"99999999h", b"1" + b"0" * 320 + b"h",
    b'"\\q"', b'"#"', b'"', b"#", b"x.0", b"frame", b"f32[]", b"f32[0]", b"x86_64-avx2", b"jax", b"exec",
    b"skip", b"use", b"approve", b"\n", b" ", b"\t", b"\xff", b"\x00", b"\xe2\x80\xa8", b"(" * 150,
    b"not " * 120,
]
_SPICE = [b"\xff", b'"', b"#", b"\\", b"{", b"}", b"\n", b"\x00", b"\r", b"\x0c", b".", b"-", b"\xc3"]


def _byte_mutant(rng: random.Random) -> bytes:
    data = bytearray(rng.choice(SEEDS))
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(data) + 1)
        op = rng.randrange(5)
        if op == 0 and i < len(data):
            data[i] = rng.randrange(256)
        elif op == 1:
            data[i:i] = rng.choice(_SPICE)
        elif op == 2:
            del data[i:i + rng.randint(1, 40)]
        elif op == 3:
            data[i:i] = data[i:i + rng.randint(1, 60)]
        else:
            data[i:i] = bytes([rng.randrange(256)])
    return bytes(data)


def _token_mutant(rng: random.Random) -> bytes:
    toks = _TOKEN.findall(rng.choice(SEEDS))
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(toks))
        op = rng.randrange(5)
        if op == 0:
            del toks[i]
        elif op == 1:
            toks.insert(i, toks[i])
        elif op == 2 and i + 1 < len(toks):
            toks[i], toks[i + 1] = toks[i + 1], toks[i]
        elif op == 3:
            toks[i] = rng.choice(_VOCAB)
        else:
            toks.insert(i, rng.choice(_VOCAB) + rng.choice([b" ", b""]))
    return b"".join(toks)


def _valid(diags: tuple[Diagnostic, ...] | list[Diagnostic]) -> None:
    for d in diags:
        assert d.code in CODES, d
        assert d.span is None or d.span.line >= 1, d


def _run(data: bytes) -> str:
    """Everything `planc check` and `planc fmt` do with the bytes; the outcome's name."""
    try:
        text = decode_source(data, "fuzz.plan")
    except DiagnosticError as e:
        _valid(e.diagnostics)
        return "undecodable"
    try:
        module = parse(text, "fuzz.plan")
    except DiagnosticError as e:
        _valid(e.diagnostics)
        render_all(e.diagnostics, {"fuzz.plan": text})
        return "syntax"
    diags = check(module)
    _valid(diags)
    render_all(diags, {"fuzz.plan": text})
    out = format_module(module)
    assert parse(out) == module
    assert format_module(parse(out)) == out
    return "error" if any(d.is_error for d in diags) else "clean"


@pytest.mark.parametrize(("kind", "count", "mutate"), [
    ("byte", N_BYTE, _byte_mutant), ("token", N_TOKEN, _token_mutant)])
def test_mutants_give_only_diagnostics(kind: str, count: int, mutate) -> None:
    rng = random.Random(20240611 if kind == "byte" else 7)
    seen: dict[str, int] = {}
    for n in range(count):
        data = mutate(rng)
        try:
            outcome = _run(data)
        except Exception as e:
            raise AssertionError(f"{kind} mutant #{n} raised {type(e).__name__}: {e}\n{data!r}") from e
        seen[outcome] = seen.get(outcome, 0) + 1
    # Every stage was reached: some mutants fail to parse, some parse and fail checks, some pass.
    assert seen.get("syntax", 0) > count // 10, seen
    assert seen.get("error", 0) + seen.get("clean", 0) > count // 20, seen


def test_at_least_5000_mutants() -> None:
    assert N_BYTE + N_TOKEN >= 5000
