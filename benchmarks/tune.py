"""Cost-model tuning on this host: held-out accuracy of the fitted roofline, and a decision it fixes.

    .venv/bin/python benchmarks/tune.py [--repeat 30] [--warmup 5] [--runs 300] [--plot FILE]

Accuracy: the example plans' modules and ~30 generated JAX modules (elementwise to
matmul-heavy), lowered with export_stablehlo, facts from cost_facts, compiled for the
host's best CPU target and timed with compiler.tune.measure (LoadedModule on the driver
the bundle writer would give them: local-task from HEAVY_FLOPS up, else local-sync).
Modules are sorted by their datasheet prediction and cut into blocks of five; two per
block (seeded) are held out, the rest fit the device kind (no per-module overrides).
MAPE and Kendall tau-b on the held-out modules, datasheet (before) vs fitted (after).

Decision: a two-"device" deployment of this host (cpu0 = x86_64-avx512, cpu1 = x86_64-avx2,
shared memory) whose datasheet overstates cpu1's memory bandwidth 10x and calls dispatch
free: the merge DP alternates devices and merges nothing. `planc tune` on that bundle, then
recompiling with --profile, merges the chain. Both bundles run with planrt's Runner in this
process, alternately, `--runs` times; medians and the ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import jax.numpy as jnp
import numpy as np
from planc.compiler.bundle.build import BuildOptions, build_bundle
from planc.compiler.cli import main as planc
from planc.compiler.codegen.cache import Cache
from planc.compiler.codegen.compile import CompileJob, compile_all
from planc.compiler.codegen.stablehlo import cost_facts, export_stablehlo
from planc.compiler.codegen.targets import Target
from planc.compiler.costs.model import ComputeFacts
from planc.compiler.costs.profiles import load_profile
from planc.compiler.tuning.fit import KindModel, predict
from planc.compiler.tuning.probes import driver_for
from planc.compiler.tuning.tune import (
    ModuleCase,
    Report,
    bundle_cases,
    fit,
    format_changes,
    format_report,
    measure,
    plot,
    report,
)
from planc.runtime.bundle.loader import load_bundle
from planc.runtime.engine.runner import RunConfig, Runner
from planc.runtime.host.detect import detect, ranked_variants

__all__ = ["main"]

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = [("defects/defects.plan", "defects"), ("agent/agent.plan", "triage"),
            ("sensors/sensors.plan", "sensors"), ("sensors/sensors.plan", "vib_screen")]


def _generated() -> list[tuple[str, object, list[tuple[int, ...]]]]:
    """(name, function, f32 argument shapes): elementwise, reductions, softmax, matmuls (power-of-two
    sizes and others), batched matmuls, MLPs, attention, convolutions; 42 modules."""
    import jax

    out: list[tuple[str, object, list[tuple[int, ...]]]] = []
    for n in (1 << 10, 1 << 14, 1 << 17, 1 << 19, 1 << 21):
        out.append((f"axpb_{n}", lambda x: x * 1.5 + 0.5, [(n,)]))
    for n in (1 << 12, 1 << 16, 1 << 20):
        out.append((f"addmul_{n}", lambda x, y: (x + y) * y, [(n,), (n,)]))
    for n in (1 << 13, 1 << 18):
        out.append((f"tanh_{n}", lambda x: jnp.tanh(x) * 0.5 + x, [(n,)]))
    for r, c in ((64, 256), (512, 512), (1024, 2048)):
        out.append((f"rowsum_{r}x{c}", lambda x: jnp.sum(x, axis=1), [(r, c)]))
    for r, c in ((128, 128), (512, 512)):
        out.append((f"softmax_{r}x{c}", lambda x: jax.nn.softmax(x, axis=-1), [(r, c)]))
    for n in (24, 32, 48, 64, 96, 128, 160, 224, 256, 320, 448, 512, 640):
        out.append((f"matmul_{n}", lambda a, b: a @ b, [(n, n), (n, n)]))
    for b, n in ((8, 64), (4, 128)):
        out.append((f"bmm_{b}x{n}", lambda a, c: jnp.einsum("bij,bjk->bik", a, c), [(b, n, n), (b, n, n)]))
    for b, d in ((8, 64), (16, 128), (32, 192), (64, 256), (128, 384), (128, 512), (256, 768)):
        out.append((f"mlp_{b}x{d}", lambda x, w1, w2: jnp.maximum(x @ w1, 0.0) @ w2,
                    [(b, d), (d, d), (d, d)]))
    for s, d in ((32, 32), (128, 64), (256, 128)):
        out.append((f"attn_{s}x{d}", lambda q, k, v: jax.nn.softmax(q @ k.T, axis=-1) @ v, [(s, d)] * 3))
    for hw, ci, co in ((16, 8, 16), (32, 16, 32)):
        out.append((f"conv_{hw}_{ci}_{co}", lambda x, w: jax.lax.conv_general_dilated(
            x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")),
            [(1, hw, hw, ci), (3, 3, ci, co)]))
    return out


def generated_cases(target: Target, driver: str) -> list[ModuleCase]:
    specs = _generated()
    lowered = {}
    for name, fn, shapes in specs:
        types = [(s, "f32") for s in shapes]
        f = cost_facts(fn, types)  # fused: XLA's traffic after fusion, closest to IREE's dispatches
        facts = ComputeFacts(f.flops, f.bytes_accessed, "f32")
        lowered[name] = (export_stablehlo(fn, types, name=name), facts,
                         tuple(("f32", s) for s in shapes))
    built = compile_all([CompileJob(n, target, m) for n, (m, _, _) in lowered.items()], cache=Cache.default(),
                        progress=None)
    return [ModuleCase(n, target.value, driver if driver != "rule" else driver_for(target, f.flops),
                       built[(n, target)], sig, ("f32",), f) for n, (_, f, sig) in lowered.items()]


def example_cases(target: str, out: Path, driver: str) -> list[ModuleCase]:
    host = detect()
    cases = []
    for file, plan in EXAMPLES:
        source = ROOT / "examples" / file
        res = build_bundle(source, out / f"{plan}.planb", plan=plan, options=BuildOptions(progress=None))
        for c in bundle_cases(load_bundle(res.path), host, source=source, targets=(target,)):
            cases.append(ModuleCase(f"{plan}.{c.module}", c.target, c.driver if driver == "rule" else driver,
                                    c.vmfb, c.inputs, c.outputs, c.facts))
    return cases


def split(cases: list[ModuleCase], spec, seed: int) -> tuple[list[ModuleCase], list[ModuleCase]]:
    """Blocks of five by datasheet prediction; two of each block held out."""
    rng = random.Random(seed)
    ordered = sorted(cases, key=lambda c: predict(c.facts, spec))
    fit_set, held = [], []
    for i in range(0, len(ordered), 5):
        block = ordered[i:i + 5]
        out = set(rng.sample(range(len(block)), min(2, len(block) - 1))) if len(block) > 1 else set()
        for j, c in enumerate(block):
            (held if j in out else fit_set).append(c)
    return fit_set, held


def splits(measured, spec, profile, n: int) -> str:
    """Held-out MAPE and Kendall tau (before, after) over `n` seeded splits, and per class of module."""
    by_name = {m.module: m for m in measured}
    cases = [ModuleCase(m.module, m.target, m.driver, b"", (), (), m.facts) for m in measured]
    stats: dict[str, list[float]] = {k: [] for k in ("mb", "ma", "tb", "ta", "mg", "me")}
    for seed in range(n):
        _, held = split(cases, spec, seed)
        names = {c.module for c in held}
        result = fit([m for m in measured if m.module not in names], profile, overrides=False)
        rep = report([by_name[c] for c in sorted(names)], {spec.name: KindModel(spec)}, result)
        for key, value in (("mb", rep.mape("before")), ("ma", rep.mape("after")), ("tb", rep.tau("before")),
                           ("ta", rep.tau("after"))):
            stats[key].append(value)
        gen = Report(tuple(r for r in rep.rows if "." not in r.module))
        ex = Report(tuple(r for r in rep.rows if "." in r.module))
        stats["mg"].append(gen.mape("after"))
        if ex.rows:
            stats["me"].append(ex.mape("after"))

    def show(key: str, pct: bool) -> str:
        v = np.array(stats[key])
        f = (lambda x: f"{100 * x:.1f} %") if pct else (lambda x: f"{x:.3f}")
        return f"{f(np.median(v))} (range {f(v.min())} .. {f(v.max())})"

    return (f"\nover {n} seeded splits (median, range): held-out MAPE before {show('mb', True)}, "
            f"after {show('ma', True)}\n  Kendall tau before {show('tb', False)}, after {show('ta', False)}\n"
            f"  after, generated modules only: MAPE {show('mg', True)}; "
            f"example modules only: MAPE {show('me', True)}")


def accuracy(args: argparse.Namespace, tmp: Path) -> None:
    host = detect()
    best = next(t for t in ranked_variants({t.value: {} for t in Target}, host) if not t.startswith("cuda"))
    target = Target.parse(best)
    profile = load_profile()
    spec = profile.devices[best]
    cases = example_cases(best, tmp, args.driver) + generated_cases(target, args.driver)
    fit_set, held = split(cases, spec, args.seed)
    t0 = time.perf_counter()
    clock = time.thread_time if args.clock == "thread" else time.perf_counter
    measured = measure(cases, repeat=args.repeat, warmup=args.warmup, rounds=args.rounds, seed=args.seed,
                       clock=clock)
    held_names = {c.module for c in held}
    result = fit([m for m in measured if m.module not in held_names], profile, overrides=False)
    rep_held = report([m for m in measured if m.module in held_names], {best: KindModel(spec)}, result)
    rep_all = report(measured, {best: KindModel(spec)}, result)
    print(f"## accuracy on {best} ({len(cases)} modules: {len(cases) - len(_generated())} from examples, "
          f"{len(_generated())} generated; {len(fit_set)} fit, {len(held)} held out; "
          f"{args.repeat} runs in {args.rounds} rounds after {args.warmup} warm-ups each, "
          f"measured in {time.perf_counter() - t0:.1f} s)\n")
    print(format_changes(result))
    print("\nheld-out modules (not used for fitting):")
    print(format_report(rep_held))
    print(f"\nall modules (fit + held out): MAPE before {100 * rep_all.mape('before'):.1f} %, "
          f"after {100 * rep_all.mape('after'):.1f} %; Kendall before {rep_all.tau('before'):.3f}, "
          f"after {rep_all.tau('after'):.3f}")
    print(splits(measured, spec, profile, args.splits))
    if args.plot:
        plot(rep_held, args.plot, title=f"held-out modules on {best}")
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
