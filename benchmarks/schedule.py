"""Scheduling quality and speed: ours against HEFT, PEFT and greedy on the HEFT paper's random DAGs.

    .venv/bin/python benchmarks/schedule.py [--seeds 2] [--small-seeds 1] [--sizes 100,1000,10000]

1. Quality: random DAGs of Topcuoglu et al. 2002 section 5.1 (v in 20..100, CCR in
   0.1..10, shape alpha, heterogeneity beta, out-degree 3), 3, 4 or 5 devices by turn,
   ``--seeds`` graphs per parameter combination. Schedule length ratio (SLR: makespan
   over the sum of minimum costs on the critical path by minimum costs), makespan ratio
   to HEFT, wins/ties/losses against HEFT (tie: within 1e-9 relative).
2. Optimality: graphs of 6, 8 and 10 tasks solved exactly by branch and bound; gap of
   each method to the optimum. "ours (search only)" is the optimizer without its final
   branch-and-bound polish.
3. Speed: wall and CPU time of ``schedule(method="ours")`` (compile, portfolio, local
   search, the Schedule record) and wall time of HEFT through the same entry point on
   100, 1k and 10k-task graphs, median of 3. CPU time is the figure to trust on a
   shared machine.
Everything runs in this process, one core, fixed seeds.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from planc.compiler.scheduling import DagParams, Objective, random_dag, schedule
from planc.compiler.scheduling.exact import exact
from planc.compiler.scheduling.greedy import greedy
from planc.compiler.scheduling.heft import heft
from planc.compiler.scheduling.listsched import Timing
from planc.compiler.scheduling.optimize import SearchOptions, optimize
from planc.compiler.scheduling.peft import peft
from planc.compiler.scheduling.problem import Problem, compile_problem
from planc.compiler.scheduling.ranks import cp_min

__all__ = ["main"]

SIZES = (20, 40, 60, 80, 100)
CCRS = (0.1, 0.5, 1.0, 5.0, 10.0)
ALPHAS = (0.5, 1.0, 2.0)
BETAS = (0.1, 0.5, 1.0)
SMALL = (6, 8, 10)


def _ours(prob: Problem, polish: bool = True) -> Timing:
    options = SearchOptions() if polish else SearchOptions(polish_tasks=0)
    extra = [greedy(prob)]
    return optimize(prob, Objective.LATENCY, options, extra)


METHODS: dict[str, Callable[[Problem], Timing]] = {"ours": _ours, "heft": heft, "peft": peft, "greedy": greedy}


@dataclass
class Tally:
    slr: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in METHODS})
    ratio: list[float] = field(default_factory=list)
    by_ccr: dict[float, list[float]] = field(default_factory=dict)
    wins: list[int] = field(default_factory=lambda: [0, 0, 0])
    seconds: float = 0.0


def _problems(sizes: tuple[int, ...], seeds: int) -> list[tuple[float, Problem]]:
    out = []
    for k, (v, ccr, alpha, beta, s) in enumerate(itertools.product(sizes, CCRS, ALPHAS, BETAS, range(seeds))):
        params = DagParams(v, alpha=alpha, out_degree=3, ccr=ccr, beta=beta, devices=3 + k % 3)
        out.append((ccr, compile_problem(*random_dag(params, seed=1000 * s + k))))
    return out


def quality(seeds: int) -> Tally:
    tally = Tally()
    for ccr, prob in _problems(SIZES, seeds):
        spans = {}
        for name, method in METHODS.items():
            t0 = time.perf_counter()
            spans[name] = method(prob).makespan
            if name == "ours":
                tally.seconds += time.perf_counter() - t0
        lb = cp_min(prob)
        for name, span in spans.items():
            tally.slr[name].append(span / lb)
        r = spans["ours"] / spans["heft"]
        tally.ratio.append(r)
        tally.by_ccr.setdefault(ccr, []).append(r)
        tally.wins[0 if r < 1 - 1e-9 else 1 if r <= 1 + 1e-9 else 2] += 1
    return tally


def optimality(seeds: int) -> tuple[dict[str, list[float]], list[float]]:
    gaps: dict[str, list[float]] = {"ours": [], "ours (search only)": [], "heft": [], "peft": [], "greedy": []}
    exact_s = []
    for _, prob in _problems(SMALL, seeds):
        runs = {"ours": _ours(prob), "ours (search only)": _ours(prob, polish=False), "heft": heft(prob),
                "peft": peft(prob), "greedy": greedy(prob)}
        t0 = time.perf_counter()
        opt = exact(prob, Objective.LATENCY, runs["ours (search only)"]).timing.makespan
        exact_s.append(time.perf_counter() - t0)
        for name, t in runs.items():
            gaps[name].append(t.makespan / opt - 1)
    return gaps, exact_s


def speed(sizes: list[int]) -> list[tuple[int, int, float, float, float, float]]:
    """Per size: tasks, edges, ours wall and CPU seconds, HEFT wall seconds, makespan ratio."""
    rows = []
    for v in sizes:
        graph, platform = random_dag(DagParams(v, ccr=1.0, devices=4), seed=v)
        ours_t, ours_cpu, heft_t = [], [], []
        for _ in range(3):
            t0, c0 = time.perf_counter(), time.process_time()
            ours = schedule(graph, platform, method="ours")
            ours_t.append(time.perf_counter() - t0)
            ours_cpu.append(time.process_time() - c0)
            t0 = time.perf_counter()
            base = schedule(graph, platform, method="heft")
            heft_t.append(time.perf_counter() - t0)
        rows.append((v, graph.number_of_edges(), statistics.median(ours_t), statistics.median(ours_cpu),
                     statistics.median(heft_t), ours.makespan / base.makespan))
    return rows


def _report_quality(tally: Tally, seeds: int) -> None:
    n = len(tally.ratio)
    print(f"## Quality: {n} random DAGs (v {SIZES}, CCR {CCRS}, alpha {ALPHAS}, beta {BETAS}, "
          f"{seeds} seed(s) each, 3-5 devices)\n")
    print("| method | mean SLR | median SLR |\n|---|---|---|")
    for name, vals in tally.slr.items():
        print(f"| {name} | {statistics.mean(vals):.3f} | {statistics.median(vals):.3f} |")
    w, t, lo = tally.wins
    print(f"\nours / HEFT makespan: mean {statistics.mean(tally.ratio):.3f}, median "
          f"{statistics.median(tally.ratio):.3f}, worst {max(tally.ratio):.4f}; "
          f"vs HEFT win/tie/loss {w}/{t}/{lo}; ours {tally.seconds / n * 1000:.0f} ms per graph (wall)")
    print("\n| CCR | " + " | ".join(f"{c:g}" for c in sorted(tally.by_ccr)) + " |")
    print("|---|" + "---|" * len(tally.by_ccr))
    print("| ours / HEFT | " + " | ".join(f"{statistics.mean(tally.by_ccr[c]):.3f}"
                                        for c in sorted(tally.by_ccr)) + " |")


def _report_gaps(gaps: dict[str, list[float]], exact_s: list[float], small_seeds: int) -> None:
    m = len(exact_s)
    print(f"\n## Gap to the exact optimum: {m} DAGs of {SMALL} tasks ({small_seeds} seed(s) per combination)\n")
    print("| method | mean gap | worst gap | optimal |\n|---|---|---|---|")
    for name, vals in gaps.items():
        hit = sum(g <= 1e-9 for g in vals)
        print(f"| {name} | {100 * statistics.mean(vals):.2f} % | {100 * max(vals):.2f} % | {hit}/{m} |")
    print(f"\nexact branch and bound: median {statistics.median(exact_s):.3f} s, max {max(exact_s):.2f} s")


def _report_speed(rows: list[tuple[int, int, float, float, float, float]]) -> None:
    print("\n## Speed (median of 3, CCR 1, 4 devices)\n")
    print("| tasks | edges | ours wall | ours CPU | HEFT wall | ours / HEFT makespan |\n|---|---|---|---|---|---|")
    for v, e, o, c, h, r in rows:
        print(f"| {v} | {e} | {o:.3f} s | {c:.3f} s | {h:.3f} s | {r:.4f} |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=2, help="graphs per combination, v 20..100")
    ap.add_argument("--small-seeds", type=int, default=1, help="graphs per combination, v 6..10")
    ap.add_argument("--sizes", default="100,1000,10000", help="task counts for the speed table")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    if args.seeds > 0:
        _report_quality(quality(args.seeds), args.seeds)
    if args.small_seeds > 0:
        _report_gaps(*optimality(args.small_seeds), args.small_seeds)
    sizes = [int(x) for x in args.sizes.split(",") if x]
    if sizes:
        _report_speed(speed(sizes))
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
