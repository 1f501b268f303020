"""Neighbourhood search: one window kind (the search of issue 28's first half) against the
adaptive choice of three kinds, from the same incumbent, same budget, same process.

    cd benchmarks && nice -n 10 ../.venv/bin/python lns_kinds.py [--stg-dir DIR] [--budget UNITS]

For each WfCommons workflow (benchmarks/workflows.py, 38-58 tasks) and, with ``--stg-dir``,
a few 100-task / 8-processor STG graphs the full model leaves open: the heuristic plus the
full CP-SAT model at the default rule give the incumbent; then neighbourhood search runs
three ways, interleaved, each at the budget the rule gives it (or ``--budget``): one window
kind in 12 rounds (the search before this change), the three adaptive kinds in 12 rounds,
and the default (adaptive kinds, 24 shorter rounds). Makespans (deterministic: one run each)
and CPU seconds.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from planc.compiler.scheduling import budget
from planc.compiler.scheduling.api import _ours
from planc.compiler.scheduling.bounds import lower_bounds
from planc.compiler.scheduling.cpsat import SolverOptions, solve
from planc.compiler.scheduling.lns import KINDS, ROUNDS, lns
from planc.compiler.scheduling.problem import compile_problem
from planc.compiler.scheduling.schedule import Objective

STG_OPEN = ("rand0118", "rand0025", "rand0112", "rand0119")


def cases(stg_dir: Path | None):
    from workflows import RECIPES, deployment, workflow

    logging.getLogger("wfcommons").setLevel(logging.ERROR)
    for recipe in ("montage", "epigenomics", "1000genome", "srasearch"):
        if recipe in RECIPES:
            yield f"{recipe}-40", workflow(recipe, 40, 0), deployment()
    if stg_dir:
        from stg_set import processors, read_stg

        for name in STG_OPEN:
            g, platform = processors(read_stg(stg_dir / "100" / f"{name}.stg"), 8)
            yield f"stg {name}/8", g, platform


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stg-dir", type=Path)
    ap.add_argument("--budget", type=float, help="LNS units (default: what the rule gives)")
    args = ap.parse_args(argv)
    print("| case | tasks | after full model | bound | LNS units | one kind, 12 rounds | CPU s | "
          "adaptive, 12 rounds | CPU s | adaptive, 24 rounds (default) | CPU s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, g, platform in cases(args.stg_dir):
        prob = compile_problem(g, platform)
        inc = _ours(prob, Objective.LATENCY, 0, None)
        total = budget.cap(prob.n)
        full = budget.first(prob.n, total)
        res = solve(prob, Objective.LATENCY, inc, SolverOptions(time=full, seed=0))
        best = res.timing or inc
        lb = max(lower_bounds(prob, Objective.LATENCY).best, res.bound)
        share = args.budget or budget.lns_share(total - full, budget.stake(best.makespan, lb))
        if res.proven or share <= 0:
            print(f"| {name} | {prob.n} | {best.makespan:.2f} | {lb:.2f} | proven | | | | | | |")
            continue
        out = []
        for kinds, rounds in ((("run",), 12), (KINDS, 12), (KINDS, ROUNDS)):
            c0 = time.process_time()
            r = lns(prob, best, budget=share, seed=0, lower=lb, kinds=kinds, rounds=rounds)
            out.append(((r.timing or best).makespan, time.process_time() - c0))
        print(f"| {name} | {prob.n} | {best.makespan:.2f} | {lb:.2f} | {share:.2f} | {out[0][0]:.2f} | "
              f"{out[0][1]:.1f} | {out[1][0]:.2f} | {out[1][1]:.1f} | {out[2][0]:.2f} | {out[2][1]:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
