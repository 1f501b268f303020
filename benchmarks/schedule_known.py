"""Scheduling at the default budget against published optima and best-known schedules.

    nice -n 10 .venv/bin/python benchmarks/schedule_known.py --stg-dir DIR [--sizes 50,100]
        [--procs 2,4,8,16] [--stride 1] [--workflows] [--known benchmarks/best_known.json]

1. Kasahara STG (``--stg-dir``, layout in benchmarks/stg_set.py): every graph through
   ``schedule(method="auto")`` at the default budget, checked by ``validate``; per cell the
   gap to the published result (the optimum, or the best known upper bound where none was
   proven; negative: shorter than it), graphs at or below it, graphs below a published upper
   bound, graphs proven optimal by planc, and CPU seconds. ``--stride k`` takes every k-th
   graph of each cell.
2. Workflows (``--workflows``): the WfCommons workflows of benchmarks/workflows.py at the
   default budget against the best-known schedules of ``--known`` (benchmarks/best_known.py)
   and against planc's own lower bound (the proven gap).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path

from planc.compiler.scheduling import schedule, validate
from stg_set import processors, published, read_stg

__all__ = ["main", "stg_rows", "workflow_rows"]

HERE = Path(__file__).parent


class _Safety(logging.Handler):
    """Counts the solver's "stopped at its CPU safety" warnings (budget.cpu_cap)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.fired = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.fired += "CPU safety" in record.getMessage()


SAFETY = _Safety()
logging.getLogger("planc.compiler.scheduling").addHandler(SAFETY)


def _run(g, platform):
    c0 = time.process_time()
    before = SAFETY.fired
    s = schedule(g, platform, method="auto")
    cpu = time.process_time() - c0
    validate(g, platform, s)  # independent of the schedulers: precedence, durations, no overlap
    return s, cpu, SAFETY.fired > before


def stg_rows(root: Path, sizes: list[int], procs: list[int], stride: int, log=print) -> list[dict]:
    """One row per (size, processors) cell; ``log`` gets a line per graph that misses."""
    rows = []
    for v in sizes:
        for p in procs:
            pub = published(root, v, p)
            gaps, proven, cpus, beaten, safety = [], 0, [], [], 0
            for name in sorted(pub)[::stride]:
                g, platform = processors(read_stg(root / str(v) / name), p)
                s, cpu, fired = _run(g, platform)
                safety += fired
                ref = pub[name]
                gap = s.makespan / ref.upper - 1
                gaps.append(gap)
                cpus.append(cpu)
                proven += bool(s.bounds and s.bounds.proven)
                if s.makespan < ref.upper:
                    beaten.append(f"{name} {s.makespan:.0f} < {ref.upper}")
                if gap > 0:
                    log(f"  {v}/{p} {name}: {s.makespan:.0f} vs published {ref.lower}..{ref.upper} "
                        f"(+{100 * gap:.2f} %), own bound {s.bounds.best if s.bounds else 0:.0f}")
            rows.append({"v": v, "p": p, "n": len(gaps), "mean": statistics.mean(gaps), "worst": max(gaps),
                             "hit": sum(x <= 1e-9 for x in gaps), "proven": proven, "beaten": beaten,
                             "cpu": statistics.median(cpus), "cpu_max": max(cpus), "safety": safety})
    return rows


def workflow_rows(known: dict, log=print) -> list[dict]:
    from best_known import key
    from workflows import RECIPES, deployment, workflow

    logging.getLogger("wfcommons").setLevel(logging.ERROR)
    platform = deployment()
    rows = []
    for recipe in RECIPES:
        for size in (40, 100, 200):
            rec = known.get(key(recipe, size))
            if rec is None:
                continue
            g = workflow(recipe, size, 0)
            s, cpu, fired = _run(g, platform)
            lb = max(s.bounds.best if s.bounds else 0.0, rec.get("lower_bound", 0.0))
            best = min(rec["makespan"], s.makespan)
            rows.append({"recipe": recipe, "n": g.number_of_nodes(), "makespan": s.makespan, "best": best,
                             "to_best": s.makespan / best - 1, "lb": lb, "proven_gap": s.makespan / lb - 1,
                             "own_gap": s.gap, "method": s.method.value, "cpu": cpu, "safety": fired})
            log(f"  {recipe} {g.number_of_nodes()}: {s.makespan:.2f} best {best:.2f} bound {lb:.2f}")
    return rows


def _print_stg(rows: list[dict]) -> None:
    print("| tasks | procs | graphs | mean gap | worst gap | <= published | below published UB | "
          "proven optimal | CPU s median / max | CPU safety hit |\n|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['v']} | {r['p']} | {r['n']} | {100 * r['mean']:.3f} % | {100 * r['worst']:.2f} % | "
              f"{r['hit']}/{r['n']} | {len(r['beaten'])} | {r['proven']}/{r['n']} | "
              f"{r['cpu']:.1f} / {r['cpu_max']:.1f} | {r['safety']} |")
    for r in rows:
        if r["beaten"]:
            print(f"\n{r['v']} tasks / {r['p']} processors, shorter than the published upper bound: "
                  + "; ".join(r["beaten"]))


def _print_workflows(rows: list[dict]) -> None:
    print("| recipe | tasks | default makespan | best known | gap to best known | lower bound | "
          "proven gap | kept | CPU s | CPU safety hit |\n|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['recipe']} | {r['n']} | {r['makespan']:.2f} | {r['best']:.2f} | {100 * r['to_best']:.2f} % | "
              f"{r['lb']:.2f} | {100 * r['proven_gap']:.2f} % | {r['method']} | {r['cpu']:.1f} | "
              f"{'yes' if r['safety'] else 'no'} |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stg-dir", type=Path, help="the STG set (see benchmarks/stg_set.py)")
    ap.add_argument("--sizes", default="50,100")
    ap.add_argument("--procs", default="2,4,8,16")
    ap.add_argument("--stride", type=int, default=1, help="every k-th graph of each cell")
    ap.add_argument("--workflows", action="store_true", help="the WfCommons rows against --known")
    ap.add_argument("--known", type=Path, default=HERE / "best_known.json")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    if args.stg_dir:
        rows = stg_rows(args.stg_dir, [int(x) for x in args.sizes.split(",")],
                        [int(x) for x in args.procs.split(",")], args.stride)
        _print_stg(rows)
    if args.workflows:
        from best_known import load

        _print_workflows(workflow_rows(load(args.known)))
    print(f"\ntotal {time.perf_counter() - t0:.0f} s wall")
    return 0


if __name__ == "__main__":
    sys.exit(main())
