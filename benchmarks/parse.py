"""Front-end throughput: parse and parse+check of generated plans, against bare lark baselines.

    .venv/bin/python benchmarks/parse.py [--sizes 1000,10000,100000] [--runs 5]

Plans are generated (fixed seed) with a realistic mixture of constructs: targets, inputs,
models, tools, tasks with policies and guards, gates, loops with carries, comments and outputs;
every generated plan checks clean. Baselines run in the same process on the same text:
lark's LALR parser on the same grammar building only its parse tree (no AST, no spans), once
as lark runs by default and once with the cyclic GC paused as planc's parse does, and lark's
Earley parser (1k lines only; it is far slower). Times are CPU seconds of this process
(time.process_time), medians, runs interleaved: the machine may be shared.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from lark import Lark
from planc.dsl.check import check
from planc.dsl.parser import grammar, parse

__all__ = ["generate", "main"]

_GRAMMAR = Path(__file__).resolve().parents[1] / "dsl" / "grammar.lark"
_TARGETS = ["x86_64-avx2", "x86_64-avx512", "aarch64-neon", "cuda-sm80", "cuda-sm90"]


def _plan(rng: random.Random, k: int) -> list[str]:
    """One plan of roughly 40-70 lines."""
    n_tasks = rng.randint(8, 20)
    lines = [f"# plan {k}: generated", f"plan p{k} {{",
             f"  target {', '.join(rng.sample(_TARGETS, rng.randint(1, 4)))}",
             f"  objective {rng.choice(['latency', 'throughput', 'energy'])}", "",
             "  input frame: f32[1, 64, 64, 3]", "  input level: f32[]", "",
             '  model norm = jax "models.py:normalize"',
             '  model det = jax "models.py:detector" weights "det.npz"',
             '  model cls = mlir "classifier.mlir"',
             '  tool notify = exec "tools/notify.sh"  # side effect',
             '  tool lookup = python "tools.py:lookup" returns f32[1, 64]', "",
             "  task t0 = norm(frame)"]
    for i in range(1, n_tasks):
        prev = f"t{rng.randrange(i)}"
        kind = rng.random()
        if kind < 0.35:
            lines.append(f"  task t{i} = {rng.choice(['det', 'cls', 'norm'])}({prev})")
        elif kind < 0.55:
            lines.append(f"  task t{i} = {rng.choice(['max', 'min', 'mean', 'sum'])}({prev})")
        elif kind < 0.8:
            lines += [f"  task t{i} = notify({prev}, \"alert #{i}\", {rng.randint(1, 9)}) when level > 0.5",
                      f"      retry {rng.randint(0, 5)} backoff 100ms..2s timeout {rng.randint(1, 9)}s "
                      f"breaker 5 per 30s",
                      "      on failure skip cost 40ms"]
        elif kind < 0.9:
            lines += [f"  gate g{i} ({prev}) when level > 0.5 and level < 0.85 or not (level > 0.99)",
                      "      timeout 30m default reject",
                      f"  task t{i} = lookup(g{i}) after t0 on failure use t0"]
        else:
            lines += [f"  loop l{i} max {rng.randint(2, 9)} until q{i} > 0.9 expect 2 {{",
                      f"    carry c{i} = {prev} then r{i}",
                      f"    task r{i} = norm(c{i})",
                      f"    task q{i} = mean(r{i})",
                      "  }",
                      f"  task t{i} = max(r{i}) when q{i} > -1.5"]
    lines += ["", f"  output t{n_tasks - 1}, t0", "}", ""]
    return lines


def generate(n_lines: int, seed: int = 0) -> str:
    """A .plan file of about n_lines lines (whole plans, so never much more)."""
    rng = random.Random(seed)
    lines: list[str] = []
    k = 0
    while len(lines) < n_lines:
        lines += _plan(rng, k)
        k += 1
    return "\n".join(lines)


def _medians(fns: list[Callable[[], object]], runs: int) -> list[float]:
    """Median time of each function; runs interleave, so load from elsewhere hits all alike."""
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(runs):
        for fn, ts in zip(fns, times, strict=True):
            gc.collect()  # every contender starts from the same heap
            t = time.process_time()
            fn()
            ts.append(time.process_time() - t)
    return [statistics.median(ts) for ts in times]


def _measure(size: int, runs: int, bare: Lark, earley: Lark) -> tuple:
    """One row: lines, runs, and median seconds of each contender on one generated file."""
    text = generate(size)
    n = text.count("\n") + 1
    runs = runs if n <= 20_000 else max(3, runs // 2)
    t_bare, t_nogc, t_parse = _medians(
        [lambda: bare.parse(text), lambda: _without_gc(lambda: bare.parse(text)),
         lambda: parse(text, "bench.plan")], runs)
    module = parse(text, "bench.plan")
    assert not [d for d in check(module) if d.is_error], "generated plans must check clean"
    (t_check,) = _medians([lambda: check(module)], runs)
    t_earley = _medians([lambda: earley.parse(text)], 3)[0] if n <= 2_000 else None
    return n, runs, t_bare, t_nogc, t_parse, t_parse + t_check, t_earley


def _without_gc(fn: Callable[[], object]) -> None:
    gc.disable()
    try:
        fn()
    finally:
        gc.enable()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--sizes", default="1000,10000,100000", help="comma-separated line counts")
    ap.add_argument("--runs", type=int, default=5, help="timed runs per size (halved above 20k lines)")
    args = ap.parse_args(argv)
    bare = Lark.open(str(_GRAMMAR), parser="lalr", maybe_placeholders=True)
    earley = Lark.open(str(_GRAMMAR), parser="earley", propagate_positions=True, maybe_placeholders=True)
    grammar()  # build ours before timing
    rows = [_measure(int(s), args.runs, bare, earley) for s in args.sizes.split(",")]
    _table(rows)
    return 0


def _rate(t: float, n: int) -> str:
    return f"{t * 1000:.1f} ms ({n / t / 1000:.0f}k lines/s)"


def _table(rows: list[tuple]) -> None:
    print("| lines | runs | lark LALR tree | lark LALR tree, GC paused | planc parse | planc / LALR "
          "| planc / LALR GC paused | planc parse+check | lark Earley | Earley / planc |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n, runs, bare, nogc, ours, both, earley in rows:
        e = _rate(earley, n) if earley else "n/a"
        er = f"{earley / ours:.1f}x" if earley else "n/a"
        print(f"| {n} | {runs} | {_rate(bare, n)} | {_rate(nogc, n)} | {_rate(ours, n)} | {ours / bare:.2f}x "
              f"| {ours / nogc:.2f}x | {_rate(both, n)} | {e} | {er} |")


if __name__ == "__main__":
    sys.exit(main())
