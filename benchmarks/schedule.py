"""Scheduling quality and speed: ours and the CP-SAT solver against HEFT, PEFT and greedy.

    .venv/bin/python benchmarks/schedule.py [--seeds 2] [--small-seeds 1] [--sizes 100,1000,10000]
        [--stg-seeds 2] [--wf-seeds 1] [--opt-time 0.3] [--quality-opt-time 0.1]
        [--stg-dir DIR [--stg-stride 1]] [--known]

With ``--stg-dir`` (the Kasahara STG set) and ``--known`` (best-known workflow schedules),
the default-budget rows of benchmarks/schedule_known.py come first: gap to the published
optima and upper bounds, to the best-known schedules and to planc's own bounds.

0. STG: random graphs generated the way the Kasahara Standard Task Graph set was
   (``benchmarks/stg_dags.py``: samepred, sameprob, layrpred, layrprob; integer
   costs 1-10), 50 and 100 tasks on 2, 4, 8, 16 identical processors, no communication.
   Gap of HEFT, ours and the solver (warm-started with ours, ``--opt-time``
   deterministic seconds) to the best lower bound or proven optimum.
0b. Workflows: WfCommons recipes (Montage, Epigenomics, 1000Genome, Seismology, SRASearch,
   BLAST; see benchmarks/workflows.py; needs the ``bench`` extra) on a heterogeneous
   cpu-arm-gpu deployment: makespan ratio to HEFT, and the lower bound over HEFT (no
   scheduler can go below it).

1. Quality: random DAGs of Topcuoglu et al. 2002 section 5.1 (v in 20..100, CCR in
   0.1..10, shape alpha, heterogeneity beta, out-degree 3), 3, 4 or 5 devices by turn,
   ``--seeds`` graphs per parameter combination. Schedule length ratio (SLR: makespan
   over the sum of minimum costs on the critical path by minimum costs), makespan ratio
   to HEFT, wins/ties/losses against HEFT (tie: within 1e-9 relative).
2. Optimality: graphs of 6, 8 and 10 tasks solved exactly by branch and bound; gap of
   each method to the optimum. "ours (search only)" is the optimizer without its final
   branch-and-bound polish.
3. Speed: wall and CPU time of ``schedule(method="ours")`` (compile, portfolio, local
   search, the Schedule record), of ``schedule(method="auto")`` (what ``planc compile``
   runs: ours, then the solver within its size, with the lower bounds) and wall time of
   HEFT through the same entry point on 100, 1k and 10k-task graphs, median of 3. CPU time is the figure to trust on a
   shared machine.
Everything runs in this process, one core, fixed seeds.
"""

from __future__ import annotations

import argparse
import itertools
import math
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from planc.compiler.scheduling import Objective, schedule
from planc.compiler.scheduling.bounds import lower_bounds
from planc.compiler.scheduling.cpsat import SolverOptions, solve
from planc.compiler.scheduling.exact import exact
from planc.compiler.scheduling.greedy import greedy
from planc.compiler.scheduling.heft import heft
from planc.compiler.scheduling.listsched import Timing
from planc.compiler.scheduling.optimize import SearchOptions, optimize
from planc.compiler.scheduling.peft import peft
from planc.compiler.scheduling.problem import Problem, compile_problem
from planc.compiler.scheduling.ranks import cp_min
from random_dags import DagParams, random_dag
from stg_dags import StgParams, Structure, stg_dag

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


def _solved(prob: Problem, warm: Timing, opt_time: float) -> tuple[Timing, float, bool, float]:
    """The solver warm-started with ``warm``: best timing, best lower bound, proven, CPU seconds."""
    c0 = time.process_time()
    res = solve(prob, Objective.LATENCY, warm, SolverOptions(time=opt_time))
    cpu = time.process_time() - c0
    lb = max(lower_bounds(prob, Objective.LATENCY).best, res.bound)
    return (res.timing or warm), lb, res.proven, cpu


def stg(seeds: int, opt_time: float) -> None:
    print(f"## STG-style graphs: gap to the best lower bound or proven optimum (solver {opt_time} det. s)\n")
    print("| tasks | procs | graphs | HEFT mean / worst | ours mean / worst | cpsat mean / worst | "
          "cpsat optimal | cpsat CPU s (median) |\n|---|---|---|---|---|---|---|---|")
    every = []
    for v in (50, 100):
        for p in (2, 4, 8, 16):
            gaps: dict[str, list[float]] = {"heft": [], "ours": [], "cpsat": []}
            proven, cpus = 0, []
            for k, (structure, seed) in enumerate(itertools.product(Structure, range(seeds))):
                prob = compile_problem(*stg_dag(StgParams(v, structure, processors=p), seed=1000 * seed + v + p))
                h, o = heft(prob), _ours(prob)
                best, lb, ok, cpu = _solved(prob, o, opt_time)
                lb = math.ceil(lb - 1e-6)  # integer costs, no communication: the optimum is an integer
                cpus.append(cpu)
                proven += ok or best.makespan <= lb
                for name, t in (("heft", h), ("ours", o), ("cpsat", best)):
                    gaps[name].append(0.0 if ok and name == "cpsat" else t.makespan / lb - 1)
            every += gaps["cpsat"]
            cells = " | ".join(f"{100 * statistics.mean(g):.2f} % / {100 * max(g):.2f} %" for g in gaps.values())
            print(f"| {v} | {p} | {len(gaps['heft'])} | {cells} | {proven}/{len(cpus)} | "
                  f"{statistics.median(cpus):.2f} |")
    print(f"\ncpsat over all {len(every)} graphs: mean gap {100 * statistics.mean(every):.3f} %, "
          f"worst {100 * max(every):.3f} %")


def workflows(seeds: int, opt_time: float) -> None:
    try:
        from workflows import RECIPES, deployment, workflow
    except ImportError as e:  # pragma: no cover - the bench extra is missing
        print(f"\n## Workflows: skipped ({e}; install the bench extra)")
        return
    import logging

    logging.getLogger("wfcommons").setLevel(logging.ERROR)
    platform = deployment()
    print(f"\n## WfCommons workflows on cpu-arm-gpu (solver {opt_time} det. s): makespan / HEFT\n")
    print("| recipe | tasks | graphs | ours / HEFT | cpsat / HEFT | lower bound / HEFT | cpsat gap | "
          "cpsat CPU s |\n|---|---|---|---|---|---|---|---|")
    ratios, losses = [], 0
    for recipe in RECIPES:
        for size in (40, 100, 200):
            rows = []
            for seed in range(seeds):
                prob = compile_problem(workflow(recipe, size, seed), platform)
                h, o = heft(prob).makespan, _ours(prob)
                best, lb, _, cpu = _solved(prob, o, opt_time)
                rows.append((prob.n, o.makespan / h, best.makespan / h, lb / h, best.makespan / lb - 1, cpu))
                losses += best.makespan > h * (1 + 1e-9)
            ratios += [r[2] for r in rows]
            n = statistics.median(r[0] for r in rows)
            cells = " | ".join(f"{statistics.mean(r[k] for r in rows):.3f}" for k in (1, 2, 3))
            print(f"| {recipe} | {n:.0f} | {len(rows)} | {cells} | "
                  f"{100 * statistics.mean(r[4] for r in rows):.2f} % | {statistics.median(r[5] for r in rows):.1f} |")
    print(f"\ncpsat / HEFT over {len(ratios)} workflows: mean {statistics.mean(ratios):.3f}, "
          f"worst {max(ratios):.4f}, losses to HEFT {losses}")


@dataclass
class Tally:
    slr: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in METHODS})
    ratio: list[float] = field(default_factory=list)
    solver_ratio: list[float] = field(default_factory=list)
    solver_losses: int = 0
    by_ccr: dict[float, list[float]] = field(default_factory=dict)
    wins: list[int] = field(default_factory=lambda: [0, 0, 0])
    seconds: float = 0.0


def _problems(sizes: tuple[int, ...], seeds: int) -> list[tuple[float, Problem]]:
    out = []
    for k, (v, ccr, alpha, beta, s) in enumerate(itertools.product(sizes, CCRS, ALPHAS, BETAS, range(seeds))):
        params = DagParams(v, alpha=alpha, out_degree=3, ccr=ccr, beta=beta, devices=3 + k % 3)
        out.append((ccr, compile_problem(*random_dag(params, seed=1000 * s + k))))
    return out


def quality(seeds: int, opt_time: float) -> Tally:
    tally = Tally()
    for ccr, prob in _problems(SIZES, seeds):
        spans = {}
        for name, method in METHODS.items():
            t0 = time.perf_counter()
            timing = method(prob)
            spans[name] = timing.makespan
            if name == "ours":
                tally.seconds += time.perf_counter() - t0
                if opt_time > 0:
                    solved = _solved(prob, timing, opt_time)[0].makespan
        if opt_time > 0:
            tally.solver_ratio.append(solved / spans["heft"])
            tally.solver_losses += solved > spans["heft"] * (1 + 1e-9)
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


def speed(sizes: list[int]) -> list[tuple[int, int, float, float, float, float, float, float, str]]:
    """Per size: tasks, edges, ours wall and CPU s, HEFT wall s, makespan ratio, auto wall and CPU s
    and the method auto kept."""
    rows = []
    for v in sizes:
        graph, platform = random_dag(DagParams(v, ccr=1.0, devices=4), seed=v)
        ours_t, ours_cpu, heft_t, auto_t, auto_cpu = [], [], [], [], []
        for _ in range(3):
            t0, c0 = time.perf_counter(), time.process_time()
            auto = schedule(graph, platform, method="auto")
            auto_t.append(time.perf_counter() - t0)
            auto_cpu.append(time.process_time() - c0)
            t0, c0 = time.perf_counter(), time.process_time()
            ours = schedule(graph, platform, method="ours")
            ours_t.append(time.perf_counter() - t0)
            ours_cpu.append(time.process_time() - c0)
            t0 = time.perf_counter()
            base = schedule(graph, platform, method="heft")
            heft_t.append(time.perf_counter() - t0)
        rows.append((v, graph.number_of_edges(), statistics.median(ours_t), statistics.median(ours_cpu),
                     statistics.median(heft_t), ours.makespan / base.makespan, statistics.median(auto_t),
                     statistics.median(auto_cpu), auto.method.value))
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
    if tally.solver_ratio:
        print(f"cpsat (warm-started with ours) / HEFT makespan: mean {statistics.mean(tally.solver_ratio):.3f}, "
              f"worst {max(tally.solver_ratio):.4f}, losses {tally.solver_losses}")
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


def _report_speed(rows: list[tuple[int, int, float, float, float, float, float, float, str]]) -> None:
    print("\n## Speed (median of 3, CCR 1, 4 devices)\n")
    print("| tasks | edges | ours wall | ours CPU | HEFT wall | ours / HEFT makespan | auto wall | auto CPU | "
          "auto kept |\n|---|---|---|---|---|---|---|---|---|")
    for v, e, o, c, h, r, aw, ac, m in rows:
        print(f"| {v} | {e} | {o:.3f} s | {c:.3f} s | {h:.3f} s | {r:.4f} | {aw:.3f} s | {ac:.3f} s | {m} |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=2, help="graphs per combination, v 20..100")
    ap.add_argument("--small-seeds", type=int, default=1, help="graphs per combination, v 6..10")
    ap.add_argument("--sizes", default="100,1000,10000", help="task counts for the speed table")
    ap.add_argument("--stg-seeds", type=int, default=2, help="STG-style graphs per structure, size and count")
    ap.add_argument("--wf-seeds", type=int, default=1, help="WfCommons workflows per recipe and size")
    ap.add_argument("--opt-time", type=float, default=0.3, help="solver budget (deterministic s), STG/workflows")
    ap.add_argument("--quality-opt-time", type=float, default=0.1, help="solver budget on the HEFT set (0: off)")
    ap.add_argument("--stg-dir", help="the Kasahara STG set: default-budget rows against published optima")
    ap.add_argument("--stg-stride", type=int, default=1, help="every k-th STG graph of each cell")
    ap.add_argument("--known", action="store_true", help="workflows against benchmarks/best_known.json")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    if args.stg_dir or args.known:
        import schedule_known

        schedule_known.main((["--stg-dir", args.stg_dir, "--stride", str(args.stg_stride)] if args.stg_dir else [])
                            + (["--workflows"] if args.known else []))
    if args.stg_seeds > 0:
        stg(args.stg_seeds, args.opt_time)
    if args.wf_seeds > 0:
        workflows(args.wf_seeds, args.opt_time)
    if args.seeds > 0:
        _report_quality(quality(args.seeds, args.quality_opt_time), args.seeds)
    if args.small_seeds > 0:
        _report_gaps(*optimality(args.small_seeds), args.small_seeds)
    sizes = [int(x) for x in args.sizes.split(",") if x]
    if sizes:
        _report_speed(speed(sizes))
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
