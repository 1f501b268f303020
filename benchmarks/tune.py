"""Cost-model tuning on this host: held-out accuracy of the fitted roofline, and a decision it fixes.

    .venv/bin/python benchmarks/tune.py [--repeat 30] [--warmup 5] [--runs 300] [--plot FILE]

Accuracy: the example plans' modules and the generated ones of benchmarks/tune_modules.py
(six families: elementwise chains, reductions, matmuls/MLPs, attention, convolutions, and
StableHLO text declared as `mlir` models), compiled for the host's best CPU target and
timed with compiler.tune.measure (local-sync by default). Three models side by side: the
untuned datasheet roofline and today's fit (roofline form, today's facts: XLA's cost
analysis, 0 flops for mlir), and the new fit (facts counted from the StableHLO, dispatches
read from the compiled module, two-level memory, fitted combination). Modules are sorted
by their datasheet prediction and cut into blocks of five; two per block (seeded) are
held out, the rest fit the device kind: MAPE and Kendall tau-b on the held-out modules,
median over --splits splits; then leave-one-family-out MAPE for every family.

Decision: a two-"device" deployment of this host (cpu0 = x86_64-avx512, cpu1 = x86_64-avx2,
shared memory) whose datasheet overstates cpu1's memory bandwidth 10x and calls dispatch
free. With today's XLA facts the merge DP alternated devices and merged nothing; with
facts counted from the StableHLO (fused traffic, weighted tanh) it merges the chain even
on that datasheet, so what `planc tune` fixes there is the predicted time. Both bundles run with planrt's Runner in this
process, alternately, `--runs` times; medians and the ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import random
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from planc.compiler.bundle.build import BuildOptions, build_bundle
from planc.compiler.cli import main as planc
from planc.compiler.codegen.targets import Target
from planc.compiler.costs.model import ComputeFacts
from planc.compiler.costs.profiles import load_profile
from planc.compiler.tuning.fit import KindModel, kendall_tau, mape, predict
from planc.compiler.tuning.tune import Measurement, fit, format_changes, measure, plot, report
from planc.runtime.bundle.loader import load_bundle
from planc.runtime.engine.runner import RunConfig, Runner
from planc.runtime.host.detect import detect, ranked_variants

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tune_modules import example_cases, generated_cases

__all__ = ["main"]

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = [("defects/defects.plan", "defects"), ("agent/agent.plan", "triage"),
            ("sensors/sensors.plan", "sensors"), ("sensors/sensors.plan", "vib_screen")]


def split(names: list[str], order: dict[str, float], seed: int) -> set[str]:
    """Held-out names: blocks of five by datasheet prediction, two of each block (seeded)."""
    rng = random.Random(seed)
    ordered = sorted(names, key=lambda n: order[n])
    held: set[str] = set()
    for i in range(0, len(ordered), 5):
        block = ordered[i:i + 5]
        if len(block) > 1:
            held |= {block[j] for j in rng.sample(range(len(block)), min(2, len(block) - 1))}
    return held


MODELS = ("datasheet", "today", "new")


def _predictor(which: str, train: list[Measurement], profile, spec, llc):
    """Seconds for a module's facts: the untuned datasheet roofline, today's fit (roofline
    form, today's facts) or the new one (fuller form, counted facts and dispatches)."""
    if which == "datasheet":
        model = KindModel(spec)
    else:
        res = fit(train, profile, overrides=False, form="roofline" if which == "today" else "full", llc_bytes=llc)
        model = res.model(spec.name)
    return model.predict


def evaluate(measured: list[Measurement], legacy: dict[str, ComputeFacts], family: dict[str, str], profile,
             spec, n_splits: int, llc) -> dict:
    """Held-out MAPE and tau per model over `n_splits` splits, and leave-one-family-out MAPE."""
    sets = {"datasheet": [replace(m, facts=legacy[m.module]) for m in measured],
            "today": [replace(m, facts=legacy[m.module]) for m in measured], "new": list(measured)}
    order = {m.module: predict(legacy[m.module], spec) for m in measured}
    names = [m.module for m in measured]
    out: dict = {"splits": {w: ([], []) for w in MODELS}, "lofo": {}}
    for seed in range(n_splits):
        held = split(names, order, seed)
        for which in MODELS:
            ms = sets[which]
            f = _predictor(which, [m for m in ms if m.module not in held], profile, spec, llc)
            test = [m for m in ms if m.module in held]
            pred, real = [f(m.facts) for m in test], [m.median for m in test]
            out["splits"][which][0].append(mape(pred, real))
            out["splits"][which][1].append(kendall_tau(pred, real))
    for fam in sorted(set(family.values())):
        row = {}
        for which in MODELS:
            ms = sets[which]
            f = _predictor(which, [m for m in ms if family[m.module] != fam], profile, spec, llc)
            test = [m for m in ms if family[m.module] == fam]
            row[which] = (mape([f(m.facts) for m in test], [m.median for m in test]), len(test))
        out["lofo"][fam] = row
    return out


def _med(values: list[float], pct: bool) -> str:
    v = np.array(values)
    f = (lambda x: f"{100 * x:.1f} %") if pct else (lambda x: f"{x:.3f}")
    return f"{f(np.median(v))} ({f(v.min())}-{f(v.max())})"


def accuracy(args: argparse.Namespace, tmp: Path) -> None:
    host = detect()
    best = next(t for t in ranked_variants({t.value: {} for t in Target}, host) if not t.startswith("cuda"))
    target = Target.parse(best)
    profile = load_profile()
    spec = profile.devices[best]
    cases = example_cases(best, tmp, args.driver) + generated_cases(target, args.driver)
    family = {c.case.module: c.family for c in cases}
    legacy = {c.case.module: c.legacy for c in cases}
    t0 = time.perf_counter()
    clock = time.thread_time if args.clock == "thread" else time.perf_counter
    if args.load:  # times of an earlier run (--save), facts counted afresh
        saved = json.loads(args.load.read_text())
        measured = [Measurement(c.case.module, c.case.target, c.case.driver, c.case.facts, *saved[c.case.module])
                    for c in cases if c.case.module in saved]
    else:
        measured = list(measure([c.case for c in cases], repeat=args.repeat, warmup=args.warmup,
                                rounds=args.rounds, seed=args.seed, clock=clock))
    if args.save:
        args.save.write_text(json.dumps({m.module: [m.median, m.spread, m.samples] for m in measured}, indent=1))
    took = time.perf_counter() - t0
    llc = None if args.llc_mb is None else args.llc_mb * (1 << 20)
    counts = {f: sum(1 for v in family.values() if v == f) for f in sorted(set(family.values()))}
    n_ex = sum(1 for c in cases if "." in c.case.module)
    print(f"## accuracy on {best}: {len(cases)} modules ({n_ex} from the examples, {len(cases) - n_ex} generated); "
          f"families: {', '.join(f'{f} {n}' for f, n in counts.items())}; {args.repeat} runs in {args.rounds} "
          f"rounds after {args.warmup} warm-ups each, measured in {took:.1f} s\n")
    result = fit(measured, profile, overrides=False, form="full", llc_bytes=llc)
    print("new fit on all modules:\n" + format_changes(result))
    ev = evaluate(measured, legacy, family, profile, spec, args.splits, llc)
    print(f"\n| {args.splits} seeded splits, held-out (median, range) | MAPE | Kendall tau |\n|---|---|---|")
    labels = {"datasheet": "datasheet (untuned, today's facts)", "today": "today's fit (roofline, XLA facts)",
              "new": "new fit (counted facts, dispatches, 2-level memory, combination)"}
    for which in MODELS:
        mapes, taus = ev["splits"][which]
        print(f"| {labels[which]} | {_med(mapes, True)} | {_med(taus, False)} |")
    print("\n| leave one family out | modules | MAPE datasheet | MAPE today's fit | MAPE new fit |\n|---|---|---|---|---|")
    for fam, row in ev["lofo"].items():
        print(f"| {fam} | {row['new'][1]} | {100 * row['datasheet'][0]:.1f} % | {100 * row['today'][0]:.1f} % | "
              f"{100 * row['new'][0]:.1f} % |")
    if args.table:
        pred = result.model(best)
        print("\n| module | family | dispatches | measured us | new fit (all) us |\n|---|---|---|---|---|")
        for m in sorted(measured, key=lambda m: (family[m.module], m.module)):
            print(f"| {m.module} | {family[m.module]} | {m.facts.dispatches} | {m.median * 1e6:.1f} | "
                  f"{pred.predict(m.facts) * 1e6:.1f} |")
    if args.plot:
        plot(report(measured, {best: KindModel(spec)}, result), args.plot, title=f"all modules on {best}")
        print(f"plot: {args.plot}")


SCENARIO_PLAN = """plan chain {
  target x86_64-avx2, x86_64-avx512
  objective latency
  input x: f32[64, 128]
  model mm = jax "models.py:mm" weights "w.npz"
  model act = jax "models.py:act"
  task a1 = mm(x)
  task b1 = act(a1)
  task a2 = mm(b1)
  task b2 = act(a2)
  task a3 = mm(b2)
  task b3 = act(a3)
  task a4 = mm(b3)
  task b4 = act(a4)
  output b4
}
"""
SCENARIO_MODELS = """import jax.numpy as jnp

def mm(params, x):
    return x @ params["w"]

def act(x):
    return jnp.tanh(x) * 0.5 + x
"""
# The datasheet a user wrote for "two devices" that are the two vector units of one host:
# cpu1's bandwidth typed 10x too high (512 GB/s), dispatch called free, a free link.
WRONG_PROFILE = """schema = 1
[devices.x86_64-avx2]
mem_bandwidth_gbs = 512.0
dispatch_us = 0.0
[devices.x86_64-avx512]
dispatch_us = 0.0
[links.shared-memory]
bandwidth_gbs = 1000000.0
latency_us = 0.0
[deployments.two-cpus]
pue = 1.0
host = "cpu0"
devices = { cpu0 = "x86_64-avx512", cpu1 = "x86_64-avx2" }
links = [{ a = "cpu0", b = "cpu1", link = "shared-memory" }]
"""


def write_scenario(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "models.py").write_text(SCENARIO_MODELS)
    (folder / "chain.plan").write_text(SCENARIO_PLAN)
    (folder / "wrong.toml").write_text(WRONG_PROFILE)
    w = np.random.default_rng(0).standard_normal((128, 128)).astype(np.float32) / 12
    np.savez(folder / "w.npz", w=w)
    return folder / "chain.plan"


def _placement(res) -> str:
    s = res.graph.info.schedule
    groups = {m.name: len(m.members) for m in res.modules}
    return ", ".join(f"{x.task}[{groups[x.task]}]@{x.device}" for x in sorted(s.slots, key=lambda x: x.start)
                     if x.task in groups)


def decision(args: argparse.Namespace, tmp: Path) -> None:
    plan = write_scenario(tmp / "scenario")
    wrong, tuned = str(plan.parent / "wrong.toml"), str(plan.parent / "tuned.toml")
    before = build_bundle(plan, plan.parent / "before.planb",
                          options=BuildOptions(deploy=wrong, progress=None))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = planc(["tune", str(plan.parent / "before.planb"), "--deploy", wrong, "-o", tuned,
                    "--repeat", str(args.repeat), "--warmup", str(args.warmup)])
    if rc != 0:
        sys.exit(f"planc tune failed ({rc}):\n{out.getvalue()}")
    after = build_bundle(plan, plan.parent / "after.planb",
                         options=BuildOptions(deploy=wrong, tuned=tuned, progress=None))
    runners = [Runner(load_bundle(b.path), RunConfig()) for b in (before, after)]
    x = {"x": np.random.default_rng(1).standard_normal((64, 128)).astype(np.float32)}
    seconds: list[list[float]] = [[], []]
    for i in range(args.runs + 20):
        for k, r in enumerate(runners):
            t = time.perf_counter()
            r.run(x)
            if i >= 20:
                seconds[k].append(time.perf_counter() - t)
    same = np.array_equal(runners[0].run(x)[0].outputs["b4"], runners[1].run(x)[0].outputs["b4"])
    med = [statistics.median(s) for s in seconds]
    print("\n## decision: two-device datasheet with cpu1 bandwidth 10x too high and free dispatch\n")
    print("planc tune changed:\n" + "\n".join(line for line in out.getvalue().splitlines()
                                                if line.startswith(("device kind", "  memory", "  dispatch",
                                                                    "  peak f32"))))
    print(f"\n{'plan':<22} {'modules':>7} {'predicted ms':>13} {'measured us':>12}  groups[tasks]@device")
    for label, res, m in (("datasheet (wrong)", before, med[0]), ("after planc tune", after, med[1])):
        print(f"{label:<22} {len(res.modules):>7} {res.graph.info.schedule.makespan * 1e3:>13.4f} "
              f"{m * 1e6:>12.1f}  {_placement(res)}")
    print(f"\nmeasured run latency, median of {args.runs} alternating planrt runs (same process): "
          f"before / after = {med[0] / med[1]:.2f}x; outputs identical: {same}")
    ran = set(runners[0].variants.values()) | set(runners[1].variants.values())
    print("variants run: " + ", ".join(sorted(ran)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0, help="the split shown in the table")
    ap.add_argument("--splits", type=int, default=20, help="seeded splits summarized after the table")
    ap.add_argument("--plot", type=Path)
    ap.add_argument("--save", type=Path, help="write the measured times (JSON) for a later --load")
    ap.add_argument("--load", type=Path, help="use the times of an earlier --save instead of measuring")
    ap.add_argument("--table", action="store_true", help="print every module's measured and fitted time")
    ap.add_argument("--llc-mb", type=float, help="last-level cache for the fit (default: each of the host's "
                                                    "cache levels, the best fitting kept)")
    ap.add_argument("--driver", choices=("local-sync", "local-task", "rule"), default="local-sync",
                    help="driver for the accuracy modules (rule: the bundle writer's, local-task from "
                         "HEAVY_FLOPS up); default local-sync")
    ap.add_argument("--clock", choices=("wall", "thread"), default="wall",
                    help="wall: perf_counter; thread: the calling thread's CPU time (local-sync runs "
                         "on it), which leaves out time the host's other work took the core")
    ap.add_argument("--skip-decision", action="store_true")
    ap.add_argument("--skip-accuracy", action="store_true")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="planc-tune-bench-") as d:
        if not args.skip_accuracy:
            accuracy(args, Path(d))
        if not args.skip_decision:
            decision(args, Path(d))
    return 0


if __name__ == "__main__":
    sys.exit(main())
