"""STG graphs where planc's schedule is shorter than the published best known upper bound.

    .venv/bin/python benchmarks/stg_upper_bounds.py --stg-dir DIR --write   # find and record
    .venv/bin/python benchmarks/stg_upper_bounds.py --check                 # re-check the record

``--write`` schedules every graph of ``--size`` tasks on ``--procs`` processors that the
published table leaves open (a lower and an upper bound) with ``schedule(method="auto")`` at
the default budget, and for each one whose makespan is below the upper bound copies the
``.stg`` file into benchmarks/stg_upper_bounds/ with the schedule beside it
(``NAME.pP.schedule``: one line ``task processor start finish`` per task).

``--check`` reads those files back and checks each schedule with the few lines of
``check`` below, which import nothing from planc: every task once, on a processor 1..P, for
exactly its cost; every predecessor finished before it starts (communication is free in
the STG set); no two tasks overlapping on a processor; and prints the makespan.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import sys
from pathlib import Path

__all__ = ["check", "main"]

HERE = Path(__file__).parent / "stg_upper_bounds"


def _stg(path: Path) -> tuple[dict[int, int], dict[int, list[int]]]:
    """Cost and predecessors of the real tasks (1..n) of a `.stg` file, dummies dropped."""
    rows = [ln.split() for ln in path.read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    n = int(rows[0][0])
    cost, preds = {}, {}
    for r in rows[1:n + 3]:
        k = int(r[0])
        if 1 <= k <= n:
            cost[k] = int(r[1])
            preds[k] = [int(u) for u in r[3:3 + int(r[2])] if 1 <= int(u) <= n]
    return cost, preds


def check(stg: Path, sched: Path, procs: int) -> int:
    """The makespan of a valid schedule of ``stg`` on ``procs`` processors; raises if invalid."""
    cost, preds = _stg(stg)
    placed = {}
    for line in sched.read_text().splitlines():
        task, proc, start, finish = (int(x) for x in line.split())
        if task in placed or task not in cost:
            raise ValueError(f"task {task} placed twice or unknown")
        if not 1 <= proc <= procs or start < 0 or finish - start != cost[task]:
            raise ValueError(f"task {task}: processor {proc} or duration {finish - start} != {cost[task]}")
        placed[task] = (proc, start, finish)
    if placed.keys() != cost.keys():
        raise ValueError(f"{len(cost) - len(placed)} tasks not placed")
    for v, us in preds.items():
        for u in us:
            if placed[u][2] > placed[v][1]:
                raise ValueError(f"task {v} starts at {placed[v][1]} before its predecessor {u} ends")
    for p in range(1, procs + 1):
        spans = sorted((s, f) for q, s, f in placed.values() if q == p)
        for (_, f), (s, _) in itertools.pairwise(spans):
            if s < f:
                raise ValueError(f"overlap on processor {p} at {s}")
    return max(f for _, _, f in placed.values())


def _write(root: Path, size: int, procs: int) -> None:
    from planc.compiler.scheduling import schedule, validate
    from stg_set import processors, published, read_stg

    HERE.mkdir(exist_ok=True)
    for name, ref in sorted(published(root, size, procs).items()):
        if ref.optimal:
            continue
        g, platform = processors(read_stg(root / str(size) / name), procs)
        s = schedule(g, platform, method="auto")
        validate(g, platform, s)
        print(f"{name}: {s.makespan:.0f}, published {ref.lower}..{ref.upper}, proven {s.bounds.proven}", flush=True)
        if s.makespan < ref.upper:
            shutil.copyfile(root / str(size) / name, HERE / name)
            index = {d: k + 1 for k, d in enumerate(platform.names)}
            lines = [f"{t} {index[pl.device]} {pl.start:.0f} {pl.finish:.0f}"
                     for t, pl in sorted(s.placements.items())]
            (HERE / f"{Path(name).stem}.p{procs}.schedule").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stg-dir", type=Path)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args(argv)
    if args.write:
        _write(args.stg_dir, args.size, args.procs)
    if args.check:
        for sched in sorted(HERE.glob("*.schedule")):
            stem, p = sched.name.split(".")[:2]
            print(f"{stem}.stg on {p[1:]} processors: makespan {check(HERE / f'{stem}.stg', sched, int(p[1:]))}, valid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
