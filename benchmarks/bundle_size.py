"""Bundle size, load time, first run and resident memory: weights inline (before) vs one parameter archive (after).

For every example plan and two real-size models, four targets each (ResNet-18 in JAX, 46.7 MB of
generated weights; PP-OCRv4 text recognition, the ONNX model of the rapidocr-onnxruntime wheel), builds
the bundle twice from the same plan: `before` with every constant inline in every module (how planc
built bundles before issue 29: `BuildOptions(param_min_bytes=None)`), `after` with the default
(constants >= 1 KiB in `params/weights.irpa`). Reports bundle bytes against the distinct weights
plus the compiled code, then loads each bundle in a fresh process (interleaved before/after,
`--repeat` times, medians) and measures `load_bundle` + `Runner` (load), the first run (wall and CPU
time of all threads), the median
of the next runs, and the growth of resident memory (VmRSS) from before load to after the first run.

Usage: .venv/bin/python benchmarks/bundle_size.py [--repeat N] [--plans defects,triage,...]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLANS = {"defects": ("examples/defects/defects.plan", None), "triage": ("examples/agent/agent.plan", None),
         "sensors": ("examples/sensors/sensors.plan", "sensors"),
         "vib_screen": ("examples/sensors/sensors.plan", "vib_screen"),
         "resnet18": ("benchmarks/plans/resnet18/resnet18.plan", None),
         "ppocr": ("benchmarks/plans/ppocr/ppocr.plan", None)}

CHILD = r"""
import json, os, resource, sys, time
import numpy as np
def cpu():  # user + system seconds of every thread of this process
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
def rss():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmRSS"))
from planc.runtime.bundle.loader import load_bundle
from planc.runtime.engine.runner import RunConfig, Runner
import iree.runtime
r0 = rss()
t0 = time.perf_counter()
bundle = load_bundle(sys.argv[1])
runner = Runner(bundle, RunConfig())
t1 = time.perf_counter()
rl = rss()
rng = np.random.default_rng(0)
inputs = {i["name"]: np.abs(rng.standard_normal(i["shape"]).astype(np.float32)) for i in bundle.manifest["inputs"]}
c1 = cpu()
runner.run(inputs)
t2 = time.perf_counter()
c2 = cpu()
r1 = rss()
steady = []
for _ in range(int(sys.argv[2])):
    s = time.perf_counter(); runner.run(inputs); steady.append(time.perf_counter() - s)
code = sum(bundle.size(bundle.manifest["modules"][m]["variants"][t]["path"]) for m, t in runner.variants.items())
runner.close()
print(json.dumps({"load": t1 - t0, "first": t2 - t1, "first_cpu": c2 - c1, "steady": sorted(steady)[len(steady) // 2],
                  "rss": r1 - r0, "rss_load": rl - r0, "code": code, "variants": sorted(set(runner.variants.values()))}))
"""


def _build(plan: str, out: Path, inline: bool):
    from planc.compiler.bundle.build import BuildOptions, build_bundle

    file, name = PLANS[plan]
    opts = BuildOptions(progress=None, param_min_bytes=None) if inline else BuildOptions(progress=None)
    return build_bundle(ROOT / file, out, plan=name, options=opts)


def _weights(plan: str) -> None:
    if plan == "ppocr":  # the ONNX model of the installed rapidocr-onnxruntime wheel
        import shutil

        import rapidocr_onnxruntime  # type: ignore[import-not-found]

        name = "ch_PP-OCRv4_rec_infer.onnx"
        dest = ROOT / "benchmarks/plans/ppocr" / name
        if not dest.exists():
            shutil.copy(Path(rapidocr_onnxruntime.__file__).parent / "models" / name, dest)
        return
    if plan != "resnet18":
        return
    path = ROOT / "benchmarks/plans/resnet18/resnet18.npz"
    if not path.exists():
        import numpy as np

        sys.path.insert(0, str(path.parent))
        import models  # type: ignore[import-not-found]

        np.savez(path, **models.make_weights())


def _child(path: Path, steady: int, env: dict[str, str]) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(path), str(steady)], capture_output=True, text=True,
                         env=env, check=False)
    if out.returncode != 0:
        raise SystemExit(f"loading {path.name} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _mb(n: float) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e5 else f"{n / 1e3:.1f} KB"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5, help="fresh-process loads per bundle (medians)")
    ap.add_argument("--steady", type=int, default=20, help="runs after the first, per load")
    ap.add_argument("--plans", default=",".join(PLANS), help="comma-separated, from: " + ", ".join(PLANS))
    args = ap.parse_args(argv)
    plans = [p.strip() for p in args.plans.split(",") if p.strip()]
    sizes, loads = [], []
    with tempfile.TemporaryDirectory() as d:
        env = {**os.environ, "PLANC_NOTIFY_LOG": str(Path(d) / "notify.log"), "PLANC_OUTBOX": str(Path(d) / "o.jsonl")}
        for plan in plans:
            _weights(plan)
            paths = {}
            for form in ("before", "after"):
                paths[form] = Path(d) / f"{plan}-{form}.planb"
                res = _build(plan, paths[form], inline=form == "before")
                if form == "after":
                    m = res.manifest
                    weights = (m.get("parameters") or {}).get("bytes", 0)
                    code = sum(len(res.members[v["path"]]) for mod in m["modules"].values()
                               for v in mod["variants"].values())
                    ntargets = len(m["targets"])
            size = {f: p.stat().st_size for f, p in paths.items()}
            sizes.append((plan, ntargets, size["before"], size["after"], weights, code))
            runs: dict[str, list[dict]] = {"before": [], "after": []}
            for _ in range(args.repeat):
                for form in ("before", "after"):  # interleaved: drift hits both alike
                    runs[form].append(_child(paths[form], args.steady, env))
            loads.append((plan, weights, {f: {k: statistics.median(r[k] for r in rs) for k in
                                              ("load", "first", "first_cpu", "steady", "rss_load", "rss", "code")}
                                          for f, rs in runs.items()}, runs["after"][0]["variants"]))
    print("\nbundle bytes (all targets) against distinct weights + compiled code of the 'after' bundle")
    print("| plan | targets | before | after | weights | code | after / (weights + code) | before / after |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for plan, nt, b, a, w, c in sizes:
        print(f"| {plan} | {nt} | {_mb(b)} | {_mb(a)} | {_mb(w)} | {_mb(c)} | {a / (w + c):.2f}x | {b / a:.2f}x |")
    print(f"\nfresh process per load, medians of {args.repeat} (interleaved); load = load_bundle + Runner; "
          "steady = median of the runs after the first; first run CPU = user + system time of all threads")
    print("| plan | variants | load before | load after | first run before | first run after | "
          "first run CPU before | first run CPU after | steady before | steady after |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for plan, w, r, variants in loads:
        b, a = r["before"], r["after"]
        print(f"| {plan} | {','.join(variants)} | {b['load'] * 1e3:.1f} ms | {a['load'] * 1e3:.1f} ms | "
              f"{b['first'] * 1e3:.2f} ms | {a['first'] * 1e3:.2f} ms | {b['first_cpu'] * 1e3:.0f} ms | "
              f"{a['first_cpu'] * 1e3:.0f} ms | {b['steady'] * 1e3:.3f} ms | "
              f"{a['steady'] * 1e3:.3f} ms |")
    print("\nresident memory (VmRSS) grown from before load_bundle: after load, and after the first run "
          "(which adds IREE's buffers for activations); weights + code = distinct weights + the loaded variants")
    print("| plan | weights + code | loaded before | loaded after | after / (weights + code) | "
          "first run before | first run after | after / (weights + code) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for plan, w, r, variants in loads:
        b, a = r["before"], r["after"]
        wc = w + a["code"]
        print(f"| {plan} | {_mb(wc)} | {_mb(b['rss_load'])} | {_mb(a['rss_load'])} | {a['rss_load'] / wc:.2f}x | "
              f"{_mb(b['rss'])} | {_mb(a['rss'])} | {a['rss'] / wc:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
