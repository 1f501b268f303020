"""Mutators of the front-end soak: byte flips, token splices and grammar-aware subtree splices of .plan text."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lark import Token
from lark.exceptions import LarkError
from planc.dsl.parser import grammar

__all__ = ["MUTATORS", "Corpus", "seed_files"]

ROOT = Path(__file__).resolve().parents[1]

# Rules that may stand in for one another: a statement for a statement, a clause for a clause, ...
_CLASSES = {
    "stmt": {"target", "objective", "input", "model", "tool", "task", "gate", "loop", "output", "carry"},
    "clause": {"when", "retry", "backoff", "timeout", "breaker", "on_failure", "cost", "after", "prob",
               "default", "weights", "returns", "expect"},
    "expr": {"or_expr", "and_expr", "not_", "compare", "ref", "number", "neg", "string"},
}
_CLASS_OF = {rule: cls for cls, rules in _CLASSES.items() for rule in rules}

_TOKEN = re.compile(rb'"(?:[^"\\\n]|\\.)*"|#[^\n]*|\d+(?:\.\d+)?(?:ms|s|m|h)?|[A-Za-z_]\w*'
                    rb"|\.\.|[<>=!]=|\s+|.", re.DOTALL)
# Words and shapes the grammar knows, and values at its edges (huge numbers, deep nesting, odd bytes).
_VOCAB = [
    b"plan", b"target", b"objective", b"input", b"model", b"tool", b"task", b"gate", b"loop", b"carry",
    b"output", b"when", b"retry", b"backoff", b"timeout", b"breaker", b"per", b"on", b"failure", b"cost",
    b"after", b"prob", b"default", b"max", b"until", b"expect", b"then", b"weights", b"returns", b"and",
    b"or", b"not", b"{", b"}", b"(", b")", b"[", b"]", b",", b":", b"=", b".", b"..", b"-", b"<", b">=",
    b"==", b"0", b"-1", b"0.5", b"1e999", b"1e-999", b"9" * 500, b"0s", b"1.5s", b"99999999h",
    b"1" + b"0" * 320 + b"h", b"0.0000001ms", b'"\\q"', b'"#"', b'"', b"#", b"x.0", b"x.99999999999",
    b"frame", b"f32[]", b"f32[0]", b"f32[" + b"1," * 300 + b"1]", b"x86_64-avx2", b"cuda-sm", b"jax",
    b"exec", b"python", b"mlir", b"skip", b"use", b"fail", b"approve", b"reject", b"latency", b"\n", b" ",
    b"\t", b"\r\n", b"\xff", b"\x00", b"\xe2\x80\xa8", b"\xef\xbb\xbf", b"\xc3\xa9", b"(" * 150,
    b"not " * 120, b'"' + b"a" * 5000 + b'"', b"a" * 3000,
]
_SPICE = [b"\xff", b'"', b"#", b"\\", b"{", b"}", b"\n", b"\x00", b"\r", b"\x0c", b".", b"-", b"\xc3", b"\x85"]


def seed_files() -> list[Path]:
    """Every .plan the repository ships: examples, test plans (golden diagnostics included), benchmarks."""
    found = [p for top in ("examples", "tests", "benchmarks") for p in (ROOT / top).rglob("*.plan")]
    return sorted(found)


@dataclass
class Corpus:
    """Seed texts plus the grammar fragments (source text of every subtree, by rule class) found in them.

    Mutants that parse are added back (up to `cap`), so later mutants build on earlier ones.
    """

    seeds: list[bytes]
    cap: int = 2000
    fragments: dict[str, list[bytes]] = field(default_factory=dict)
    trees: dict[int, list[tuple[str, int, int]]] = field(default_factory=dict)  # seed index -> subtrees
    names: dict[int, list[tuple[int, int]]] = field(default_factory=dict)  # seed index -> NAME tokens
    _base: int = 0

    def __post_init__(self) -> None:
        self._base = len(self.seeds)
        for i in range(len(self.seeds)):
            self._index(i)

    @classmethod
    def from_files(cls, paths: list[Path]) -> Corpus:
        return cls([p.read_bytes() for p in paths])

    def _index(self, i: int) -> bool:
        data = self.seeds[i]
        try:
            tree = grammar().parse(data.decode("utf-8"))
        except (LarkError, UnicodeDecodeError, RecursionError):
            return False
        spans: list[tuple[str, int, int]] = []
        names: list[tuple[int, int]] = []
        raw = data.decode("utf-8")
        for node in tree.iter_subtrees():
            meta = node.meta
            if node.data != "start" and not getattr(meta, "empty", True):
                a, b = _byte_pos(raw, meta.start_pos), _byte_pos(raw, meta.end_pos)
                key = _CLASS_OF.get(str(node.data), str(node.data))
                spans.append((key, a, b))
                self.fragments.setdefault(key, []).append(data[a:b])
            for tok in node.children:
                if isinstance(tok, Token) and tok.type == "NAME" and tok.start_pos is not None:
                    names.append((_byte_pos(raw, tok.start_pos), _byte_pos(raw, tok.end_pos or 0)))
        self.trees[i], self.names[i] = spans, names
        return True

    def add(self, data: bytes, rng: random.Random) -> None:
        """Keep a mutant that parses as a seed for later mutations (replacing an older mutant when full)."""
        if len(self.seeds) - self._base < self.cap:
            self.seeds.append(data)
            i = len(self.seeds) - 1
        else:
            i = rng.randrange(self._base, len(self.seeds))
            self.seeds[i] = data
        if not self._index(i):
            self.trees.pop(i, None)
            self.names.pop(i, None)


def _byte_pos(text: str, char_pos: int) -> int:
    return len(text[:char_pos].encode("utf-8")) if not text.isascii() else char_pos


def byte_mutant(corpus: Corpus, rng: random.Random) -> bytes:
    data = bytearray(rng.choice(corpus.seeds))
    for _ in range(rng.randint(1, 6)):
        i = rng.randrange(len(data) + 1)
        op = rng.randrange(6)
        if op == 0 and i < len(data):
            data[i] ^= 1 << rng.randrange(8)  # a bit flip
        elif op == 1:
            data[i:i] = rng.choice(_SPICE)
        elif op == 2:
            del data[i:i + rng.randint(1, 40)]
        elif op == 3:
            data[i:i] = data[i:i + rng.randint(1, 60)]
        elif op == 4 and i < len(data):
            data[i] = _random_byte(rng)
        else:
            data[i:i] = bytes([_random_byte(rng)])
    return bytes(data)


def _random_byte(rng: random.Random) -> int:
    # Mostly ASCII, so that most byte mutants still decode and reach the parser.
    return rng.randrange(256) if rng.random() < 0.2 else rng.randrange(9, 127)


def token_mutant(corpus: Corpus, rng: random.Random) -> bytes:
    toks = _TOKEN.findall(rng.choice(corpus.seeds)) or [b""]
    donor = _TOKEN.findall(rng.choice(corpus.seeds)) or [b""]
    for _ in range(rng.randint(1, 5)):
        toks = toks or [b""]  # every token deleted: start again from nothing
        i = rng.randrange(len(toks))
        op = rng.randrange(6)
        if op == 0:
            del toks[i]
        elif op == 1:
            toks.insert(i, toks[i])
        elif op == 2 and i + 1 < len(toks):
            toks[i], toks[i + 1] = toks[i + 1], toks[i]
        elif op == 3:
            toks[i] = rng.choice(_VOCAB)
        elif op == 4:  # a splice: a run of another seed's tokens
            j = rng.randrange(len(donor))
            toks[i:i] = donor[j:j + rng.randint(1, 30)]
        else:
            toks.insert(i, rng.choice(_VOCAB) + rng.choice([b" ", b""]))
    return b"".join(toks)


def grammar_mutant(corpus: Corpus, rng: random.Random) -> bytes:
    """Replace, drop, repeat or swap whole subtrees (a task, a clause, an expression) and rename names."""
    parsed = list(corpus.trees)
    if not parsed:
        return token_mutant(corpus, rng)
    i = rng.choice(parsed)
    data, spans, names = corpus.seeds[i], corpus.trees[i], corpus.names[i]
    edits: list[tuple[int, int, bytes]] = []
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(6)
        if op == 5 and names:  # rename: a name becomes another name of the plan (or a new one)
            a, b = rng.choice(names)
            c, d = rng.choice(names)
            edits.append((a, b, data[c:d] if rng.random() < 0.8 else data[a:b] + b"_x"))
            continue
        if not spans:
            break
        key, a, b = rng.choice(spans)
        pool = corpus.fragments.get(key) or [data[a:b]]
        if op in (0, 1):
            edits.append((a, b, rng.choice(pool)))
        elif op == 2:
            edits.append((a, b, b""))
        elif op == 3:
            edits.append((b, b, b" " + (data[a:b] if rng.random() < 0.5 else rng.choice(pool))))
        else:
            other = [s for s in spans if s[0] == key and (s[2] <= a or s[1] >= b)]
            if other:
                _, c, d = rng.choice(other)
                edits += [(a, b, data[c:d]), (c, d, data[a:b])]
    out = data
    taken: list[tuple[int, int]] = []
    for a, b, new in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        if any(a < y and x < b or a == b == x for x, y in taken):
            continue  # overlapping edits: keep the first applied
        out = out[:a] + new + out[b:]
        taken.append((a, b))
    return out


MUTATORS: dict[str, Callable[[Corpus, random.Random], bytes]] = {
    "byte": byte_mutant,
    "token": token_mutant,
    "grammar": grammar_mutant,
}

