"""planrt's overhead and latency, each against its baseline in the same process.

1. Per-task overhead: a 32-task chain of tiny modules (unmerged, one module per task) run by
   planrt's engine, vs raw `VmContext.invoke` of the same modules with prebuilt argument lists.
2. The defects plan (conv pipeline) end to end with planrt (merged, device-resident values) vs
   `jax.jit` of the same computation on this CPU, and vs the same plan unmerged with every
   value copied to the host between tasks.

Usage: .venv/bin/python benchmarks/runtime.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _median_time(fn, repeat: int, inner: int = 1) -> float:
    fn()  # warm up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - t) / inner)
    return statistics.median(times)


def _bundle(plan: Path, out: Path, **options):
    from planc.compiler.bundle.build import BuildOptions, build_bundle
    from planc.runtime.bundle.loader import load_bundle

    res = build_bundle(plan, out, options=BuildOptions(progress=None, **options))
    return res, load_bundle(out)


def overhead(tmp: Path, repeat: int) -> list[tuple[str, float]]:
    import iree.runtime as rt
    from planc.runtime.engine.runner import RunConfig, Runner

    res, bundle = _bundle(ROOT / "benchmarks/plans/chain/chain.plan", tmp / "chain.planb", max_group=1)
    runner = Runner(bundle, RunConfig())
    n = len(bundle.manifest["tasks"])
    x = np.linspace(-1, 1, 64, dtype=np.float32)
    ours = _median_time(lambda: runner.run({"x": x}), repeat, 20) / n
    # Baseline: the same modules, raw VmContext.invoke, argument lists prebuilt, results on device.
    order = [t["module"] for t in bundle.manifest["tasks"]]
    mods = [runner.modules[m] for m in order]
    dev = mods[0].device
    view = dev.to_device(x, "f32")
    args = []
    for _ in mods:
        a = rt.VmVariantList(1)
        a.push_ref(view)
        args.append(a)
    rets = [rt.VmVariantList(1) for _ in mods]

    def raw():
        for m, a, r in zip(mods, args, rets):
            r = rt.VmVariantList(1)
            m.context.invoke(m.function, a, r)

    base = _median_time(raw, repeat, 20) / n
    runner.close()
    return [("raw VmContext.invoke (baseline)", base), ("planrt engine, per task", ours)]


def latency(tmp: Path, repeat: int) -> list[tuple[str, float]]:
    import jax
    import jax.numpy as jnp

    sys.path.insert(0, str(ROOT / "examples/defects"))
    import models  # the example's own model file
    from planc.runtime.engine.runner import RunConfig, Runner

    plan = ROOT / "examples/defects/defects.plan"
    _, merged = _bundle(plan, tmp / "defects.planb")
    _, unmerged = _bundle(plan, tmp / "defects-unmerged.planb", max_group=1)
    mean = np.array([0.485, 0.456, 0.406], np.float32)
    frame = np.broadcast_to(mean, (1, 64, 64, 3)).copy()  # worst < 0.5: the guarded tool is skipped
    params = dict(np.load(ROOT / "examples/defects/detector.npz"))

    @jax.jit
    def whole(f):
        pre = models.normalize(f)
        boxes = models.detector(params, pre)
        return models.classifier_reference(pre), jnp.max(boxes)

    jax_t = _median_time(lambda: jax.block_until_ready(whole(frame)), repeat, 20)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PLANC_NOTIFY_LOG": str(tmp / "n.log")}
    r1 = Runner(merged, RunConfig(tool_env=env))
    ours = _median_time(lambda: r1.run({"frame": frame}), repeat, 20)
    out, _ = r1.run({"frame": frame})
    assert out.outputs["alert"] is None, "the benchmark input must not trigger the tool"
    # Unmerged, every value copied to the host between tasks (LoadedModule.__call__ is host in/out).
    r2 = Runner(unmerged, RunConfig(tool_env=env))
    tasks = unmerged.manifest["tasks"]

    def host_copies():
        vals = {"frame": frame}
        for t in tasks:
            if t["kind"] == "compute":
                outs = r2.modules[t["module"]](*[vals[a] for a in t["args"]])
                vals.update(zip(t["results"], outs))
            elif t["kind"] == "builtin":
                vals[t["results"][0]] = np.max(vals[t["args"][0]])

    unm = _median_time(host_copies, repeat, 20)
    r1.close()
    r2.close()
    return [("jax.jit, same computation (baseline)", jax_t), ("planrt, merged plan", ours),
            ("unmerged, host copies between tasks", unm)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        os.environ.setdefault("PLANC_CACHE_DIR", str(Path(d) / "cache"))
        for title, rows in (("per-task overhead (32-task chain of tiny modules)", overhead(Path(d), args.repeat)),
                            ("defects plan latency (conv pipeline, CPU)", latency(Path(d), args.repeat))):
            base = rows[0][1]
            print(f"\n{title}, median of {args.repeat} x 20 runs")
            print(f"| {'what':<40} | {'median':>12} | {'ratio':>7} |")
            print(f"|{'-' * 42}|{'-' * 14}|{'-' * 9}|")
            for name, t in rows:
                print(f"| {name:<40} | {t * 1e6:>9.1f} us | {t / base:>6.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
