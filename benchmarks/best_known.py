"""Best-known schedules for the WfCommons workflows of benchmarks/workflows.py, by long runs.

    nice -n 10 .venv/bin/python benchmarks/best_known.py [--opt-time 20] [--seeds 0,1]
        [--recipes montage,...] [--sizes 40,100] [--out benchmarks/best_known.json]

Each workflow is scheduled with ``schedule(method="cpsat", opt_time=T, seed=s)`` (the same
CP-SAT model and neighbourhood search as a compile, a much longer deterministic budget and
other seeds), every schedule checked by ``validate``. The file keeps, per workflow, the
shortest makespan seen over all runs so far (runs merge into it) and the best lower bound,
so benchmarks/schedule_known.py can report the default budget's gap to both.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from planc.compiler.scheduling import schedule, validate
from workflows import RECIPES, deployment, workflow

__all__ = ["key", "load", "main"]

HERE = Path(__file__).parent


def key(recipe: str, size: int, seed: int = 0) -> str:
    """The record's name: recipe, size asked, workflow seed."""
    return f"{recipe}/{size}/{seed}"


def load(path: Path) -> dict[str, dict]:
    return json.loads(path.read_text()) if path.exists() else {}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--opt-time", type=float, default=20.0, help="deterministic seconds per run")
    ap.add_argument("--seeds", default="0", help="solver seeds, comma-separated")
    ap.add_argument("--recipes", default=",".join(RECIPES))
    ap.add_argument("--sizes", default="40,100,200")
    ap.add_argument("--out", type=Path, default=HERE / "best_known.json")
    args = ap.parse_args(argv)
    logging.getLogger("wfcommons").setLevel(logging.ERROR)
    platform = deployment()
    for recipe in args.recipes.split(","):
        for size in (int(s) for s in args.sizes.split(",")):
            g = workflow(recipe, size, 0)
            for seed in (int(s) for s in args.seeds.split(",")):
                c0 = time.process_time()
                s = schedule(g, platform, method="cpsat", opt_time=args.opt_time, seed=seed)
                validate(g, platform, s)
                cpu = time.process_time() - c0
                known = load(args.out)  # re-read: other runs may have merged meanwhile
                rec = known.get(key(recipe, size), {})
                if not rec or s.makespan < rec["makespan"]:
                    rec.update(makespan=s.makespan, tasks=g.number_of_nodes(), found_by={
                        "opt_time": args.opt_time, "seed": seed, "method": s.method.value})
                rec["lower_bound"] = max(rec.get("lower_bound", 0.0), s.bounds.best)
                known[key(recipe, size)] = rec
                args.out.write_text(json.dumps(known, indent=1, sort_keys=True) + "\n")
                print(f"{recipe} {g.number_of_nodes()} seed {seed}: {s.makespan:.3f} (best {rec['makespan']:.3f}, "
                      f"bound {rec['lower_bound']:.3f}) {cpu:.0f} CPU s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
