"""Middle-end time: build + verify + infer-types on generated plans of 1k and 10k tasks.

    .venv/bin/python benchmarks/ir.py [--sizes 1000,10000] [--runs 5] [--baseline-runs 1]

Plans are generated (fixed seed): a few jax models shared by every compute task (so
tracing and cost analysis run once per model and signature), builtins, tools with
policies, guards, gates and loops with carries. Each run of ours starts with a fresh
ModelCache, so the medians include importing and tracing every model once; runs go
through the pipeline driver (which pauses the cycle collector during a pass).
Baselines, in the same process on the same plan:
  - infer-types without the per-(model, signature) trace cache (every task traces; 1k only),
  - networkx's own topological sort of the built graph, as a floor for any graph walk.
"""

from __future__ import annotations

import argparse
import functools
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import networkx as nx
import numpy as np
from planc.compiler.ir.graph import PlanGraph
from planc.compiler.models.load import ModelCache
from planc.compiler.passes import Build, InferTypes, Verify
from planc.compiler.pipeline import PipelineOptions, run_pipeline
from planc.dsl import ast as A
from planc.dsl.parser import parse

__all__ = ["generate", "main"]

MODELS = '''
import jax.numpy as jnp

def affine(params, x):
    return jnp.tanh(x @ params["w"] + params["b"])

def act(x):
    return x * (x > 0)

def mix(a, b):
    return 0.5 * (a + b)

def split(x):
    return x[:, :32] * 2.0, x
'''


def _task(rng: random.Random, i: int, tensors: list[str], scalars: list[str]) -> tuple[list[str], str, str]:
    """Lines for task(s) number i, the f32[8, 64] value it adds (or ""), and the scalar (or "")."""
    a, b = rng.choice(tensors[-50:]), rng.choice(tensors)
    kind = rng.random()
    if kind < 0.55:
        return [f"  task t{i} = {rng.choice(['affine', 'act'])}({a})"], f"t{i}", ""
    if kind < 0.7:
        return [f"  task t{i} = mix({a}, {b})"], f"t{i}", ""
    if kind < 0.75:
        return [f"  task t{i} = split({a})", f"  task u{i} = mix(t{i}.1, {b})"], f"u{i}", ""
    if kind < 0.85:
        return [f"  task s{i} = {rng.choice(['max', 'min', 'mean', 'sum'])}({a})"], "", f"s{i}"
    if kind < 0.93 and scalars:
        return [f"  task t{i} = lookup({a}, \"k{i}\") when {rng.choice(scalars)} > 0.5",
                f"      retry 3 backoff 10ms..1s timeout 2s on failure use {a}"], f"t{i}", ""
    if kind < 0.97 and scalars:
        return [f"  gate t{i} ({a}) when {rng.choice(scalars)} < 0.9 timeout 10m default approve"], f"t{i}", ""
    return [f"  loop l{i} max 4 until q{i} > 0.9 {{", f"    carry c{i} = {a} then t{i}",
            f"    task t{i} = affine(c{i})", f"    task q{i} = mean(t{i})", "  }"], f"t{i}", f"q{i}"


def generate(n_tasks: int, seed: int = 0) -> str:
    """One plan with about n_tasks tasks over four shared models."""
    rng = random.Random(seed)
    lines = ["plan big {", "  objective latency", "  input x: f32[8, 64]",
             '  model affine = jax "models.py:affine" weights "w.npz"', '  model act = jax "models.py:act"',
             '  model mix = jax "models.py:mix"', '  model split = jax "models.py:split"',
             '  tool lookup = python "tools.py:lookup" returns f32[8, 64]']
    tensors: list[str] = ["x"]
    scalars: list[str] = []
    i = 0
    while i < n_tasks:
        new, tensor, scalar = _task(rng, i, tensors, scalars)
        lines += new
        tensors += [tensor] if tensor else []
        scalars += [scalar] if scalar else []
        i += sum(1 for ln in new if ln.lstrip().startswith(("task", "gate")))
    lines += [f"  output {', '.join(tensors[-10:] + scalars[-10:])}", "}"]
    return "\n".join(lines) + "\n"


def _write(folder: Path, n: int) -> A.Plan:
    (folder / "models.py").write_text(MODELS)
    rng = np.random.default_rng(0)
    np.savez(folder / "w.npz", w=rng.normal(0, 0.1, (64, 64)).astype(np.float32), b=np.zeros(64, np.float32))
    path = folder / f"big{n}.plan"
    path.write_text(generate(n))
    return parse(path.read_text(), str(path)).plans[0]


def _toposort(graph: PlanGraph) -> list[str]:
    return list(nx.topological_sort(graph.nx))


def _median(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _ours(plan: A.Plan, cache_traces: bool = True) -> dict[str, float]:
    """One run through the pipeline driver, as `planc compile -p build,verify,infer-types` runs it."""
    passes = (Build(), Verify(), InferTypes(cache=ModelCache(traces=cache_traces)))
    result = run_pipeline(plan, passes, PipelineOptions())
    times = {t.name: t.seconds for t in result.timings}
    return {**times, "total": sum(times.values())}


def _measure(plan: A.Plan, runs: int, cache_traces: bool = True) -> dict[str, float]:
    samples = [_ours(plan, cache_traces) for _ in range(runs)]
    return {k: statistics.median(s[k] for s in samples) for k in samples[0]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--baseline-runs", type=int, default=1, help="runs of the uncached baseline (slow)")
    args = ap.parse_args(argv)
    rows: list[tuple[str, str, float, float | None]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(s) for s in args.sizes.split(",")):
            folder = Path(tmp) / f"n{n}"
            folder.mkdir()
            plan = _write(folder, n)
            graph: PlanGraph = Build().run(plan)
            ours = _measure(plan, args.runs)
            tasks = sum(1 for _ in graph.walk())
            computes = sum(1 for t in graph.walk() if t.kind == "compute")
            for step in ("build", "verify", "infer-types", "total"):
                rows.append((f"{tasks} tasks ({computes} compute)", f"ours: {step}", ours[step], None))
            floor = _median(functools.partial(_toposort, graph), args.runs)
            rows.append((f"{tasks} tasks", "floor: nx.topological_sort", floor, ours["total"] / floor))
            if n <= 1000 and args.baseline_runs > 0:
                base = _measure(plan, args.baseline_runs, cache_traces=False)
                rows.append((f"{tasks} tasks", "baseline: no trace cache, total", base["total"],
                             base["total"] / ours["total"]))
    _print(rows, args)
    return 0


def _print(rows: list[tuple[str, str, float, float | None]], args: argparse.Namespace) -> None:
    print(f"build + verify + infer-types; medians of {args.runs} runs (baseline: {args.baseline_runs})")
    print("| plan | what | median s | ratio |\n|---|---|---:|---:|")
    for plan, what, t, ratio in rows:
        r = "" if ratio is None else (f"ours {ratio:.0f}x slower" if what.startswith("floor")
                                      else f"{ratio:.1f}x slower than ours")
        print(f"| {plan} | {what} | {t:.4f} | {r} |")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
