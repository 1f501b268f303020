"""The compile context: the deployment resolved once per compile, against once per pass (the baseline).

Before issue 27, `merge`, `schedule`, the manifest and explain each called `cost_model()`,
which re-read `devices.toml` (and the tuned file) and rebuilt the roofline. A compile now
makes one `CompileContext` and hands it to all of them. The baseline is still in the tree:
a pass without a context resolves its own, as every pass did.

For each plan, in one process, interleaved (baseline, ours, baseline, ours, ...):
- `resolve`: the cost model the way a compile asks for it (merge, schedule, manifest:
  three times), fresh each round; baseline `cost_model()` three times, ours one context
  asked three times.
- `back end`: the merge and schedule passes (HEFT, so that the solver's budget does not
  drown the difference) plus the manifest's model, on the checked IR.
Medians of `--repeat` (`--back-repeat`) rounds and the ratio baseline / ours.

    .venv/bin/python benchmarks/context.py [--repeat 30] [--back-repeat 7]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from planc.compiler.costs.context import CompileContext, cost_model
from planc.compiler.ir.graph import PlanGraph
from planc.compiler.passes import Build, InferTypes, Merge, Schedule, Verify
from planc.compiler.pipeline import PipelineOptions, run_pipeline
from planc.dsl.parser import parse_file

ROOT = Path(__file__).resolve().parents[1]
PLANS = (("defects", "examples/defects/defects.plan", None, "edge-x86-gpu"),
         ("agent", "examples/agent/agent.plan", None, "edge-x86-gpu"),
         ("sensors", "examples/sensors/sensors.plan", "sensors", "edge-x86-arm"),
         ("chain", "benchmarks/plans/chain/chain.plan", None, "edge-avx2"))


def _front(path: Path, plan: str | None) -> PlanGraph:
    module = parse_file(path)
    ast_plan = next(p for p in module.plans if plan is None or p.name.name == plan)
    return run_pipeline(ast_plan, (Build(), Verify(), InferTypes()), PipelineOptions()).graph


def _resolve_baseline(graph: PlanGraph, deploy: str) -> None:
    for _ in range(3):
        cost_model(graph, deploy)


def _resolve_ours(graph: PlanGraph, deploy: str) -> None:
    ctx = CompileContext()
    for _ in range(3):
        ctx.cost_model(graph, deploy)


def _back(graph: PlanGraph, deploy: str, ctx: CompileContext | None) -> None:
    merged = Merge(deploy=deploy, context=ctx).run(graph)
    placed = Schedule(deploy=deploy, method="heft", context=ctx).run(merged)
    (ctx or CompileContext()).cost_model(placed, deploy)


def _pair(base: Callable[[], None], ours: Callable[[], None], repeat: int) -> tuple[float, float]:
    tb, to = [], []
    base(), ours()  # warm: imports, caches
    for _ in range(repeat):
        t0 = time.perf_counter()
        base()
        t1 = time.perf_counter()
        ours()
        t2 = time.perf_counter()
        tb.append(t1 - t0)
        to.append(t2 - t1)
    return statistics.median(tb), statistics.median(to)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=30, help="rounds of `resolve`")
    ap.add_argument("--back-repeat", type=int, default=7, help="rounds of `back end` (chain's merge is seconds)")
    args = ap.parse_args(argv)
    print(f"{'plan':10s} {'what':9s} {'baseline ms':>12s} {'ours ms':>9s} {'ratio':>6s}  reads (ours)")
    for name, rel, plan, deploy in PLANS:
        graph = _front(ROOT / rel, plan)
        ctx = CompileContext()
        _back(graph, deploy, ctx)
        rows = (("resolve", lambda g=graph, d=deploy: _resolve_baseline(g, d),
                 lambda g=graph, d=deploy: _resolve_ours(g, d)),
                ("back end", lambda g=graph, d=deploy: _back(g, d, None),
                 lambda g=graph, d=deploy: _back(g, d, CompileContext())))
        for what, base, ours in rows:
            b, o = _pair(base, ours, args.repeat if what == "resolve" else args.back_repeat)
            print(f"{name:10s} {what:9s} {b * 1e3:12.2f} {o * 1e3:9.2f} {b / o:6.2f}  {ctx.reads}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
