"""Merge DP quality and speed against two simple baselines on random task graphs.

    .venv/bin/python benchmarks/merge.py [--seeds 5] [--sizes 50,200,1000]

Graphs: random DAGs whose tasks take 1-3 inputs from the previous 20 tasks, 5 % barriers
(tools, on the host), flops 1e5..1e11 in f32/f16/i8, bytes 1e3..3e8, edges 1e3..1e8 bytes;
deployments edge-x86-gpu (2 devices) and server-2gpu (3).

1. Quality, total seconds (groups + transfers) relative to ours (>1: the baseline is worse):
   - unmerged: every task alone on its own fastest device (the plan without a merge pass);
   - fuse-all: all compute on one device (the best one), maximal runs of consecutive
     compute tasks (<= 64) in a topological order fused;
   - ours: merge() with default options.
2. Optimality: DAGs of 8-12 tasks solved exactly (exact DP, large budget); gap of the
   order DP alone and of the order DP + its candidates re-chosen by CP-SAT (the path of
   graphs the exact DP does not take, up to 40 tasks) to the optimum.
3. Speed: CPU time of merge() on 1k and 10k-task chains and DAGs, median of 3 (CPU
   time, not wall time, so a busy machine does not skew it; merge() is single-threaded).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from planc.compiler.costs.model import ComputeFacts, RooflineModel
from planc.compiler.costs.profiles import load_profile
from planc.compiler.merging.merge import (
    Barrier,
    Compute,
    MergeOptions,
    MergeProblem,
    merge,
    partition_cost,
)

DEPLOYMENTS = ("edge-x86-gpu", "server-2gpu")


def random_dag(n: int, rng: random.Random, chain: bool = False) -> MergeProblem:
    tasks, edges = [], []
    for i in range(n):
        if not chain and rng.random() < 0.05:
            tasks.append((f"t{i}", Barrier(rng.uniform(0, 1e-3))))
        else:
            facts = ComputeFacts(10 ** rng.uniform(5, 11), 10 ** rng.uniform(3, 8.5), rng.choice(["f32", "f16", "i8"]))
            tasks.append((f"t{i}", Compute(facts)))
        if i:
            preds = {i - 1} if chain else {rng.randrange(max(0, i - 20), i) for _ in range(rng.randint(1, 3))}
            edges += [(f"t{j}", f"t{i}", 10 ** rng.uniform(3, 8)) for j in preds]
    return MergeProblem.build(tasks, edges)


def unmerged(problem: MergeProblem, model: RooflineModel) -> float:
    host = model.deployment.host
    groups = []
    for name, node in zip(problem.names, problem.nodes):
        if isinstance(node, Barrier):
            groups.append(((name,), node.device or host))
        else:
            groups.append(((name,), min(model.deployment.names, key=lambda d: model.compute_time(node.facts, d))))
    return partition_cost(problem, model, groups)


def fuse_all(problem: MergeProblem, model: RooflineModel) -> float:
    host = model.deployment.host
    best = float("inf")
    for device in model.deployment.names:
        groups, run = [], []
        for name, node in zip(problem.names, problem.nodes):  # names are in a topological order
            if isinstance(node, Barrier) or len(run) == 64:
                if run:
                    groups.append((tuple(run), device))
                run = []
            if isinstance(node, Barrier):
                groups.append(((name,), node.device or host))
            else:
                run.append(name)
        if run:
            groups.append((tuple(run), device))
        best = min(best, partition_cost(problem, model, groups))
    return best


def quality(seeds: int, sizes: list[int]) -> None:
    print("\n1. Quality: cost relative to ours (geometric mean over graphs; >1 = worse than ours)")
    print(f"{'deployment':14} {'tasks':>6} {'graphs':>6} {'unmerged':>9} {'fuse-all':>9} {'ours':>6} {'ours cpu s':>10}")
    profile = load_profile()
    for dep in DEPLOYMENTS:
        model = RooflineModel(profile, dep)
        for n in sizes:
            r1, r2, secs = [], [], []
            for seed in range(seeds):
                problem = random_dag(n, random.Random(seed))
                t = time.process_time()
                ours = merge(problem, model).cost
                secs.append(time.process_time() - t)
                r1.append(unmerged(problem, model) / ours)
                r2.append(fuse_all(problem, model) / ours)
            print(f"{dep:14} {n:>6} {seeds:>6} {statistics.geometric_mean(r1):>9.3f} "
                  f"{statistics.geometric_mean(r2):>9.3f} {1.0:>6.3f} {statistics.median(secs):>10.3f}")


def optimality(seeds: int) -> None:
    print("\n2. Optimality on small DAGs: order DP alone and + CP-SAT (the non-exact path) against the exact DP")
    print(f"{'deployment':14} {'tasks':>6} {'graphs':>6} {'DP mean':>8} {'DP max':>8} {'DP opt':>7} "
          f"{'+solver mean':>12} {'+solver max':>11} {'opt':>4} {'solver cpu s':>12}")
    profile = load_profile()
    for dep in DEPLOYMENTS:
        model = RooflineModel(profile, dep)
        for n in (8, 10, 12):
            gaps, solved, secs = [], [], []
            for seed in range(seeds * 4):
                problem = random_dag(n, random.Random(1000 + seed))
                exact = merge(problem, model, options=MergeOptions(exact_budget=20_000_000))
                if not exact.exact:
                    continue
                heuristic = merge(problem, model, options=MergeOptions(exact_max_tasks=0, solver_time=0))
                gaps.append(heuristic.cost / exact.cost - 1)
                t = time.process_time()
                with_solver = merge(problem, model, options=MergeOptions(exact_max_tasks=0))
                secs.append(time.process_time() - t)
                solved.append(with_solver.cost / exact.cost - 1)
            print(f"{dep:14} {n:>6} {len(gaps):>6} {100 * statistics.mean(gaps):>7.2f}% "
                  f"{100 * max(gaps):>7.2f}% {sum(g < 1e-9 for g in gaps):>7} {100 * statistics.mean(solved):>11.3f}% "
                  f"{100 * max(solved):>10.3f}% {sum(g < 1e-9 for g in solved):>4} {statistics.median(secs):>12.2f}")


def speed() -> None:
    print("\n3. Speed: merge() CPU time (one core), median of 3 (edge-x86-gpu)")
    print(f"{'graph':10} {'tasks':>7} {'seconds':>8} {'groups':>7}")
    model = RooflineModel(load_profile(), "edge-x86-gpu")
    for kind in ("chain", "dag"):
        for n in (1000, 10_000):
            problem = random_dag(n, random.Random(7), chain=(kind == "chain"))
            times, result = [], None
            for _ in range(3):
                t = time.process_time()
                result = merge(problem, model)
                times.append(time.process_time() - t)
            assert result is not None
            print(f"{kind:10} {n:>7} {statistics.median(times):>8.3f} {len(result.groups):>7}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--sizes", default="50,200,1000")
    args = ap.parse_args(argv)
    quality(args.seeds, [int(s) for s in args.sizes.split(",")])
    optimality(args.seeds)
    speed()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
