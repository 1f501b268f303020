"""Real ONNX models: ONNX Runtime against IREE as planc built it before, IREE's best build, and
planc's measured choice as a whole `Plan.run` (issue 24). One process, interleaved rounds, medians.

For each model of benchmarks/real_models_prep.py (PP-OCR det/cls/rec from the rapidocr wheel; resnet18,
mobilenet_v3_small, squeezenet1_1 when torch can export them): ORT at 1 thread and at its default
threads, every IREE flag set x {local-sync, local-task} (checked against ORT), and a bundle built
from `model net = onnx "FILE"` with `--candidates auto` loaded with planc.runtime.load (its first
load measures the candidates; the timed runs are whole `Plan.run` calls, overhead included).

    .venv/bin/python -u benchmarks/real_models.py [--models ppocr-cls,resnet18] [--rounds 9]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from iree_flags import _iree, _ort, _time
from planc.compiler.bundle.build import BuildOptions, build_bundle
from planc.compiler.cache import Cache
from planc.compiler.codegen.candidates import DEFAULT_SETS, flag_set
from planc.compiler.codegen.compile import CompileErrors, CompileJob, compile_all
from planc.compiler.codegen.targets import Target
from planc.dsl.diagnostics import DiagnosticError
from real_models_prep import MODELS, prepared

PLAN = """plan {name} {{
  target {target}
  input x: f32[{dims}]
  model net = onnx "{file}"
  task y = net(x)
  output y
}}
"""


def _plan_runner(name: str, onnx_path: Path, shape: tuple[int, ...], target: Target, work: Path):
    """A whole Plan.run of a bundle built with candidates; None when planc has no ONNX front end."""
    from planc.compiler.ir.records import ModelKind

    if not hasattr(ModelKind, "ONNX"):
        return None, "planc has no ONNX front end here"
    plan = work / f"{name.replace('-', '_')}.plan"
    plan.write_text(PLAN.format(name=name.replace("-", "_"), target=target.value,
                                dims=", ".join(map(str, shape)), file=onnx_path))
    try:
        res = build_bundle(plan, work / f"{plan.stem}.planb", options=BuildOptions(progress=None, candidates="auto"))
    except DiagnosticError as e:  # e.g. E0502: the plain IREE build disagrees with ONNX Runtime
        first = e.diagnostics[0]
        return None, f"planc refused the plan: {first.code} {first.message[:120]}"
    from planc.runtime import load

    p = load(res.path)
    (choice,) = p.choices.values()
    return (lambda x: p.run(x=x)), f"{choice.chosen} ({choice.by})"


def _ort_candidate(onnx_path: Path, form: str):
    """The ORT-format candidate as planrt runs it: host array -> IREE buffer -> ORT -> IREE buffer -> host."""
    from planc.compiler.codegen.ort_form import ort_format
    from planc.runtime.engine.measure import Build, load_build

    mod = load_build(Build(form, ort_format(str(onnx_path), form), "ort"), {}, ["f32"], ["f32"])
    dev = mod.device

    def call(x):
        (out,) = mod.invoke([dev.to_device(x, "f32")])
        return dev.to_host(out, "f32")
    return call


def _iree_builds(models: dict, target: Target, sets: tuple[str, ...]) -> dict:
    jobs = [CompileJob(f"{n}@{s}", target, mlir.read_text(), flag_set(s).flags)
            for n, (_, mlir) in models.items() for s in sets]
    try:
        return compile_all(jobs, cache=Cache.default(), progress=None)
    except CompileErrors as e:
        for err in e.errors:
            print(f"  IREE refused {err.module_name}: {err.stderr.strip().splitlines()[0][:100]}")
        return e.results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=",".join(m.name for m in MODELS))
    ap.add_argument("--target", default="x86_64-avx512")
    ap.add_argument("--rounds", type=int, default=9)
    args = ap.parse_args(argv)
    target = Target.parse(args.target)
    wanted = [m for m in MODELS if m.name in args.models.split(",")]
    models = {m.name: p for m in wanted if (p := prepared(m)) is not None}
    t0 = time.perf_counter()
    built = _iree_builds(models, target, DEFAULT_SETS)
    print(f"IREE builds: {len(built)} in {time.perf_counter() - t0:.0f} s (load {os.getloadavg()[0]:.1f})")
    rows = []
    rng = np.random.default_rng(0)
    work = Path(tempfile.mkdtemp(prefix="planc-real-"))
    for m in wanted:
        if m.name not in models:
            print(f"{m.name}: skipped (no source: torch not installed?)")
            continue
        onnx_path, _ = models[m.name]
        x = rng.random(m.shape, dtype=np.float32)
        run = {"ort-1t": _ort(onnx_path, 1), "ort-default": _ort(onnx_path, None)}
        ref = run["ort-1t"](x)
        for s in DEFAULT_SETS:
            vmfb = built.get((f"{m.name}@{s}", target))
            for d in ("local-sync", "local-task") if vmfb is not None else ():
                r = _iree(vmfb, d, None)
                if float(np.max(np.abs(r(x) - ref)) / np.max(np.abs(ref))) <= 1e-2:
                    run[f"iree {s}/{d}"] = r
        for form in ("ort", "ort-nchwc"):  # planrt's ONNX Runtime candidate, IREE buffers in and out
            run[f"candidate {form}"] = _ort_candidate(onnx_path, form)
        plan_run, how = _plan_runner(m.name, onnx_path, m.shape, target, work)
        if plan_run is not None:
            run["planc"] = plan_run
        for r in run.values():
            r(x)
        reps = max(1, int(0.05 / max(_time(run["ort-1t"], x, 2), 1e-5)))
        samples: dict[str, list[float]] = {k: [] for k in run}
        for _ in range(args.rounds):
            for k, r in run.items():
                samples[k].append(_time(r, x, reps))
        med = {k: statistics.median(v) for k, v in samples.items()}
        ort_best = min(med["ort-1t"], med["ort-default"])
        # "as planc built it before": plain flags on local-task (every model here is above HEAVY_FLOPS)
        before = med.get("iree plain/local-task", math.nan)
        iree = {k: v for k, v in med.items() if k.startswith("iree ")}  # checked against ORT above
        best_k = min(iree, key=iree.get) if iree else None
        cand = min(med["candidate ort"], med["candidate ort-nchwc"])
        print(f"  ORT candidate as planrt runs it: {cand / ort_best:.2f}x ORT best")
        rows.append((m.name, m.shape, med["ort-1t"], med["ort-default"], before,
                     (best_k, iree[best_k]) if best_k else (None, math.nan), med.get("planc"), how, ort_best,
                     os.getloadavg()[0]))
        print(f"{m.name}: " + ", ".join(f"{k} {v * 1e3:.2f} ms" for k, v in sorted(med.items(), key=lambda kv: kv[1])))
    _table(rows)
    return 0


def _table(rows) -> None:
    print("\n| model | ORT 1 thread | ORT default threads | IREE as built before | IREE best (build) "
          "| planc's choice (Plan.run) | planc / ORT best | IREE best / ORT best | load |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    ratios, iree_ratios = [], []
    for name, shape, o1, od, before, (bk, bv), planc, how, best, load in rows:
        pr = planc / best if planc else math.nan
        ir = bv / best
        if planc:
            ratios.append(pr)
        iree_ratios.append(ir)
        print(f"| {name} {'x'.join(map(str, shape))} | {o1 * 1e3:.2f} ms | {od * 1e3:.2f} ms | {before * 1e3:.2f} ms "
              f"| {bv * 1e3:.2f} ms ({bk.removeprefix('iree ') if bk else '-'}) "
              f"| {planc * 1e3:.2f} ms ({how}) | {pr:.2f}x | {ir:.2f}x | {load:.1f} |" if planc else
              f"| {name} | {o1 * 1e3:.2f} ms | {od * 1e3:.2f} ms | {before * 1e3:.2f} ms | {bv * 1e3:.2f} ms "
              f"({bk.removeprefix('iree ') if bk else '-'}) | - ({how}) | - | {ir:.2f}x | {load:.1f} |")

    def gm(xs):
        return math.exp(sum(map(math.log, xs)) / len(xs)) if xs else math.nan
    print(f"\ngeometric mean: planc / ORT best {gm(ratios):.2f}x (max {max(ratios, default=math.nan):.2f}x); "
          f"IREE best / ORT best {gm(iree_ratios):.2f}x")


if __name__ == "__main__":
    raise SystemExit(main())
