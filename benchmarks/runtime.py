"""planrt's overhead and latency, each against its baseline in the same process.

1. Per-task overhead: a 32-task chain of tiny modules (unmerged, one module per task) run by
   planrt's engine (whole runs, divided by 32), vs raw `VmContext.invoke` of the same modules
   with prebuilt argument lists; in wall time and in the calling thread's CPU time (both are
   single-threaded, and CPU time leaves out what a loaded machine's scheduler adds).
2. The defects and sensors examples, run repeatedly from one loaded bundle, vs `jax.jit` of
   the same computation on this CPU (blocked on, and with its results as numpy arrays, the
   form planrt returns them in); the first run after load and the load itself measured apart.
3. --profile: cProfile of many small-plan runs, per run, by function; and the run taken
   apart by hand (inputs, invokes, outputs, the rest).

Baseline and planrt are timed in alternating rounds, so load on a shared machine hits both.

Usage: .venv/bin/python benchmarks/runtime.py [--repeat N] [--inner N] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def _rounds(fns: dict[str, Callable[[], object]], repeat: int, inner: int,
            clock: Callable[[], float] = time.perf_counter) -> dict[str, float]:
    """Median seconds per call of each function, timed in alternating rounds of `inner` calls."""
    for fn in fns.values():
        fn()  # warm up
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            t = clock()
            for _ in range(inner):
                fn()
            times[name].append((clock() - t) / inner)
    return {k: statistics.median(v) for k, v in times.items()}


def _bundle(source: Path, out: Path, plan: str | None = None, **options):
    from planc.compiler.bundle.build import BuildOptions, build_bundle
    from planc.runtime.bundle.loader import load_bundle

    build_bundle(source, out, plan=plan, options=BuildOptions(progress=None, **options))
    return load_bundle(out)


def overhead(tmp: Path, repeat: int, inner: int) -> list[tuple[str, float]]:
    import iree.runtime as rt
    from planc.runtime.engine.runner import RunConfig, Runner

    bundle = _bundle(ROOT / "benchmarks/plans/chain/chain.plan", tmp / "chain.planb", max_group=1)
    runner = Runner(bundle, RunConfig())
    n = len(bundle.manifest["tasks"])
    x = np.linspace(-1, 1, 64, dtype=np.float32)
    # Baseline: the same modules, raw VmContext.invoke, argument lists prebuilt, results on device.
    mods = [runner.modules[t["module"]] for t in bundle.manifest["tasks"]]
    view = mods[0].device.to_device(x, "f32")
    calls = []
    for m in mods:
        a = rt.VmVariantList(1)
        a.push_ref(view)
        calls.append((m.context, m.function, a))

    def raw():
        for ctx, fn, a in calls:
            ctx.invoke(fn, a, rt.VmVariantList(1))

    fns = {"raw": raw, "ours": lambda: runner.run({"x": x})}
    t = _rounds(fns, repeat, inner)
    # Both run on this thread alone: its CPU time leaves out the waits a loaded machine adds.
    cpu = _rounds(fns, repeat, inner, clock=time.thread_time)
    runner.close()
    return [("raw VmContext.invoke (baseline)", t["raw"] / n), ("planrt engine, per task", t["ours"] / n),
            ("raw VmContext.invoke, thread CPU time", cpu["raw"] / n),
            ("planrt engine, per task, thread CPU time", cpu["ours"] / n)]


class Example:
    """One example plan, its inputs, and the same computation as one `jax.jit` function."""

    def __init__(self, name: str, plan: str | None, inputs: dict[str, np.ndarray], jitted: Callable, order: list[str]):
        self.name, self.plan, self.inputs, self.jitted, self.order = name, plan, inputs, jitted, order


def _defects() -> Example:
    import jax
    import jax.numpy as jnp

    models = _models("defects")
    params = dict(np.load(EXAMPLES / "defects/detector.npz"))
    mean = np.array([0.485, 0.456, 0.406], np.float32)
    frame = np.broadcast_to(mean, (1, 64, 64, 3)).copy()  # worst < 0.5: the guarded tool is skipped

    @jax.jit
    def whole(f):
        pre = models.normalize(f)
        boxes = models.detector(params, pre)
        return models.classifier_reference(pre), jnp.max(boxes)

    return Example("defects", None, {"frame": frame}, lambda i: whole(i["frame"]), ["label", "worst"])


def _sensors() -> Example:
    import jax
    import jax.numpy as jnp

    m = _models("sensors")
    p = dict(np.load(EXAMPLES / "sensors/sensors.npz"))
    rng = np.random.default_rng(0)
    inputs = {"audio": rng.standard_normal((8, 256), dtype=np.float32),
              "vibration": rng.standard_normal((8, 128), dtype=np.float32),
              "temperature": rng.standard_normal((8, 16), dtype=np.float32)}

    @jax.jit
    def whole(audio, vib, temp):
        spec = m.spectrum(p, audio)
        t_mean, t_spread = m.temp_stats(temp)
        health = m.fuse(p, m.audio_net(p, spec), m.vib_net(p, vib), t_mean, t_spread)
        return health, jnp.argmax(health).astype(jnp.int32), jnp.min(health), jnp.sum(t_spread), jnp.max(spec)

    return Example("sensors", "sensors", inputs, lambda i: whole(i["audio"], i["vibration"], i["temperature"]),
                   ["health", "worst_unit", "low", "total", "peak"])


def _models(example: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"{example}_models", EXAMPLES / example / "models.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def latency(ex: Example, tmp: Path, repeat: int, inner: int, loads: int = 7) -> list[tuple[str, float]]:
    import jax
    from planc.runtime.bundle.loader import load_bundle
    from planc.runtime.engine.runner import RunConfig, Runner

    path = tmp / f"{ex.name}.planb"
    _bundle(EXAMPLES / ex.name / f"{ex.name}.plan", path, plan=ex.plan)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PLANC_NOTIFY_LOG": str(tmp / "n.log")}
    config = RunConfig(tool_env=env)
    # The first run after load, and the load (verify, pick variants, load modules), from fresh loads.
    firsts, load_times = [], []
    for _ in range(loads):
        t0 = time.perf_counter()
        fresh = Runner(load_bundle(path), config)
        t1 = time.perf_counter()
        fresh.run(ex.inputs)
        firsts.append(time.perf_counter() - t1)
        load_times.append(t1 - t0)
        fresh.close()
    runner = Runner(load_bundle(path), config)
    result, _ = runner.run(ex.inputs)
    want = [np.asarray(v) for v in ex.jitted(ex.inputs)]
    for name, w in zip(ex.order, want):  # the same computation: planrt's outputs match JAX's
        np.testing.assert_allclose(result.outputs[name], w, rtol=2e-4, atol=2e-5, err_msg=name)
    t = _rounds({"jax": lambda: jax.block_until_ready(ex.jitted(ex.inputs)),
                 "jax_np": lambda: [np.asarray(v) for v in ex.jitted(ex.inputs)],
                 "ours": lambda: runner.run(ex.inputs)}, repeat, inner)
    runner.close()
    return [("jax.jit, same computation (baseline)", t["jax"]),
            ("jax.jit, results as numpy arrays", t["jax_np"]),
            ("planrt, one loaded bundle, per run", t["ours"]),
            (f"planrt, first run after load (median of {loads})", statistics.median(firsts)),
            (f"planrt, load: verify + modules (median of {loads})", statistics.median(load_times))]


def profile(ex: Example, tmp: Path, runs: int) -> None:
    """Where one small-plan run's time goes: cProfile by function, then the pieces timed alone."""
    from planc.runtime.bundle.loader import load_bundle
    from planc.runtime.engine.runner import RunConfig, Runner

    runner = Runner(load_bundle(tmp / f"{ex.name}.planb"), RunConfig())
    for _ in range(200):
        runner.run(ex.inputs)
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(runs):
        runner.run(ex.inputs)
    prof.disable()
    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    rows = sorted(((tt, nc, f) for f, (_, nc, tt, _, _) in stats.items()), reverse=True)[:14]
    total = sum(tt for (_, _, tt, _, _) in stats.values())
    print(f"\ncProfile of {runs} {ex.name} runs (profiled: {total / runs * 1e6:.1f} us per run), own time per run")
    print(f"| {'function':<58} | {'calls/run':>9} | {'us/run':>8} |")
    print(f"|{'-' * 60}|{'-' * 11}|{'-' * 10}|")
    for tt, nc, (file, line, fn) in rows:
        where = f"{Path(file).name}:{line}({fn})" if line else fn
        print(f"| {where[:58]:<58} | {nc / runs:>9.1f} | {tt / runs * 1e6:>8.2f} |")
    _pieces(ex, runner)
    runner.close()


def _pieces(ex: Example, runner) -> None:
    """A run taken apart, each piece timed alone without a profiler."""
    import iree.runtime as rt

    arrays = runner._inputs.check(ex.inputs)
    mods = {t["module"]: t for t in runner.manifest["tasks"] if t["kind"] == "compute"}
    dev = next(iter(runner.modules.values())).device
    views = {n: dev.to_device(a, runner._input_types[n]) for n, a in arrays.items()}
    env, types, invokes = dict(views), {}, []
    for name, task in mods.items():
        m = runner.modules[name]
        args = rt.VmVariantList(len(task["args"]))
        for a in task["args"]:
            args.push_ref(env[a])
        ret = m.call(args)
        for i, (r, t) in enumerate(zip(task["results"], m.sig.outputs)):
            env[r], types[r] = ret.get_as_ref(i), t
        invokes.append((m, args))
    outs = [(env[v], types[v]) for v in ex.order if v in types]
    pieces = {
        "whole run": lambda: runner.run(ex.inputs),
        "check inputs": lambda: runner._inputs.check(ex.inputs),
        "copy inputs to the device": lambda: [dev.to_device(a, runner._input_types[n]) for n, a in arrays.items()],
        "module invokes alone": lambda: [m.call(a) for m, a in invokes],
        "device outputs to numpy": lambda: [dev.to_host(v, t) for v, t in outs],
    }
    t = _rounds(pieces, 15, 200)
    rest = t["whole run"] - sum(v for k, v in t.items() if k != "whole run")
    print(f"\n{ex.name}: one run taken apart (medians of 15 x 200)")
    print(f"| {'piece':<40} | {'us':>8} |")
    print(f"|{'-' * 42}|{'-' * 10}|")
    for k, v in t.items():
        print(f"| {k:<40} | {v * 1e6:>8.1f} |")
    print(f"| {'the rest: engine, values, result':<40} | {rest * 1e6:>8.1f} |")


def _table(title: str, rows: list[tuple[str, float]]) -> None:
    """Ratios against the first row; each raw-invoke row is the base of the rows after it."""
    base = rows[0][1]
    print(f"\n{title}")
    print(f"| {'what':<48} | {'median':>12} | {'ratio':>7} |")
    print(f"|{'-' * 50}|{'-' * 14}|{'-' * 9}|")
    for name, t in rows:
        if name.startswith("raw VmContext.invoke"):
            base = t
        print(f"| {name:<48} | {t * 1e6:>9.2f} us | {t / base:>6.2f}x |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=15, help="alternating rounds (medians over these)")
    ap.add_argument("--inner", type=int, default=50, help="calls per round")
    ap.add_argument("--profile", action="store_true", help="also profile the small plans' runs")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        os.environ.setdefault("PLANC_CACHE_DIR", str(Path(d) / "cache"))
        tmp = Path(d)
        per = f"median of {args.repeat} rounds x {args.inner} runs"
        _table(f"per-task overhead (32-task chain of tiny modules), {per}", overhead(tmp, args.repeat, args.inner))
        for ex in (_defects(), _sensors()):
            _table(f"{ex.name} plan latency (CPU), {per}", latency(ex, tmp, args.repeat, args.inner))
            if args.profile:
                profile(ex, tmp, 2000)
    return 0


if __name__ == "__main__":
    sys.exit(main())
