"""Which IREE builds run the real ONNX models fast on this CPU, against ONNX Runtime (issue 24).

Compiles every model of benchmarks/real_models_prep.py with every named flag set of
planc.compiler.codegen.candidates (through planc's module cache, in parallel), checks each
build's output against ONNX Runtime's, and times them all interleaved in one process with
ORT at 1 thread and at its default threads; prints medians and ratios to ORT's best.

    .venv/bin/python benchmarks/iree_flags.py [--models ppocr-cls,ppocr-det] [--sets plain,nhwc] [--rounds 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from planc.compiler.cache import Cache
from planc.compiler.codegen.candidates import FLAG_SETS, flag_set
from planc.compiler.codegen.compile import CompileErrors, CompileJob, compile_all
from planc.compiler.codegen.targets import Target
from real_models_prep import MODELS, prepared


def _ort(path: Path, threads: int | None):
    import onnxruntime as ort

    so = ort.SessionOptions()
    if threads is not None:
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
    s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    return lambda x: s.run(None, {name: x})[0]


def _iree(vmfb: bytes, driver: str, workers: int | None):
    import iree.runtime as rt

    if driver == "local-task" and workers is not None:
        rt.flags.parse_flags(f"--task_topology_max_group_count={workers}")
    config = rt.Config(driver)
    mod = rt.VmModule.copy_buffer(config.vm_instance, vmfb)
    ctx = rt.SystemContext(vm_modules=[mod], config=config)
    (name,) = [n for n in ctx.modules[mod.name].vm_module.function_names if not n.startswith("__") and "$" not in n][:1]
    fn = ctx.modules[mod.name][name]
    return lambda x: np.asarray(fn(x))


def _time(fn, x, reps: int) -> float:
    t = time.perf_counter()
    for _ in range(reps):
        fn(x)
    return (time.perf_counter() - t) / reps


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=",".join(m.name for m in MODELS))
    ap.add_argument("--sets", default=",".join(FLAG_SETS))
    ap.add_argument("--target", default="x86_64-avx512")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--drivers", default="local-sync")
    args = ap.parse_args(argv)
    target = Target.parse(args.target)
    names = args.models.split(",")
    sets = args.sets.split(",")
    models = {m.name: prepared(m) for m in MODELS if m.name in names}
    models = {k: v for k, v in models.items() if v is not None}
    jobs = [CompileJob(f"{name}@{s}", target, mlir.read_text(), flag_set(s).flags)
            for name, (_, mlir) in models.items() for s in sets]
    t0 = time.perf_counter()
    try:
        built = compile_all(jobs, cache=Cache.default(), progress="auto")
        failed: dict[str, str] = {}
    except CompileErrors as e:
        failed = {err.module_name: err.stderr.strip().splitlines()[0][:100] if err.stderr.strip() else "?"
                  for err in e.errors}
        ok = [j for j in jobs if j.module not in failed]
        built = compile_all(ok, cache=Cache.default(), progress="auto")
    print(f"compiled {len(jobs)} builds in {time.perf_counter() - t0:.0f} s; load {os.getloadavg()[0]:.1f}")
    for k, why in failed.items():
        print(f"  FAILED {k}: {why}")
    rng = np.random.default_rng(0)
    for name, (onnx_path, _) in models.items():
        shape = next(m.shape for m in MODELS if m.name == name)
        x = rng.random(shape, dtype=np.float32)
        runners = {"ort-1t": _ort(onnx_path, 1), "ort-default": _ort(onnx_path, None)}
        ref = runners["ort-1t"](x)
        for s in sets:
            vmfb = built.get((f"{name}@{s}", target))
            if vmfb is None:
                continue
            for d in args.drivers.split(","):
                r = _iree(vmfb, d, None)
                out = r(x)
                err = float(np.max(np.abs(out - ref)) / (np.max(np.abs(ref)) + 1e-12))
                mean = float(np.mean(np.abs(out - ref)) / (np.max(np.abs(ref)) + 1e-12))
                tag = ""
                if err > 1e-2:  # timed anyway, marked: the table says which builds disagree with ORT
                    print(f"  {name}@{s}/{d}: MISMATCH rel err max {err:.2e}, mean {mean:.2e}")
                    tag = " (!)"
                runners[f"{s}/{d}{tag}"] = r
        for r in runners.values():
            r(x)
        one = _time(runners["ort-1t"], x, 3)
        reps = max(1, int(0.05 / max(one, 1e-5)))
        samples: dict[str, list[float]] = {k: [] for k in runners}
        for _ in range(args.rounds):
            for k, r in runners.items():
                samples[k].append(_time(r, x, reps))
        med = {k: statistics.median(v) for k, v in samples.items()}
        best_ort = min(med["ort-1t"], med["ort-default"])
        print(f"\n{name} {shape} (load {os.getloadavg()[0]:.1f}, {reps} calls x {args.rounds} rounds)")
        print("| build | median ms | / ORT best |")
        print("|---|---:|---:|")
        for k, v in sorted(med.items(), key=lambda kv: kv[1]):
            print(f"| {k} | {v * 1e3:.2f} | {v / best_ort:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
