"""`planc demo`: compile the shipped example plan, run it with planrt, print results and schedule."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from planc.compiler.bundle.build import BuildOptions, build_bundle
from planc.compiler.commands.build import format_schedule

__all__ = ["add_parser", "example_dir", "run"]


def example_dir() -> Path:
    """examples/ of a source checkout (the demo runs from the repository)."""
    return Path(__file__).resolve().parents[2] / "examples"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("demo", help="compile and run the shipped example plan end to end")
    p.add_argument("example", nargs="?", choices=("defects", "ocr"), default="defects",
                   help="defects (default), or ocr: PP-OCRv4 from its ONNX files, compared with RapidOCR")
    p.add_argument("--images", type=int, default=5, help="ocr: how many synthetic images to read")
    p.add_argument("--plan", type=Path, default=None, help="a .plan file (default: examples/defects/defects.plan)")
    p.add_argument("--deploy", default="", help="deployment to optimize for")
    p.add_argument("-o", "--output", type=Path, default=Path(".planc-demo"), help="where the bundle and run go")
    return p


def _frame() -> np.ndarray:
    # A synthetic camera frame: a smooth gradient with a bright square "defect".
    y, x = np.mgrid[0:64, 0:64] / 63.0
    frame = np.stack([x, y, 0.5 * (x + y)], axis=-1)[None].astype(np.float32)
    frame[0, 20:32, 36:48, :] = 1.0
    return frame


def run(args: argparse.Namespace) -> int:
    from planc.compiler.codegen.reference import jax_compute
    from planc.runtime.bundle.loader import load_bundle
    from planc.runtime.engine.runner import RunConfig, Runner

    if getattr(args, "example", "defects") == "ocr":
        from planc.compiler.commands.demo_ocr import run_ocr

        return run_ocr(args, example_dir())
    plan = args.plan or example_dir() / "defects" / "defects.plan"
    out = args.output
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    res = build_bundle(plan, out / f"{plan.stem}.planb", options=BuildOptions(deploy=args.deploy))
    t1 = time.perf_counter()
    m = res.manifest
    print(f"== compiled {plan.name} -> {res.path} in {t1 - t0:.1f}s")
    print(f"   {len(m['modules'])} modules x {len(m['targets'])} targets ({', '.join(m['targets'])}), "
          f"sha256 {res.sha256[:12]}")
    for name, mod in m["modules"].items():
        print(f"   module {name}: tasks {', '.join(mod['members'])}")
    print(f"\n== schedule {_deployment_line(res.graph)}")
    print(format_schedule(res.graph), end="")
    inputs = {i["name"]: _example_input(i) for i in m["inputs"]}
    bundle = load_bundle(res.path)
    env = {"PATH": "/usr/bin:/bin", "PLANC_NOTIFY_LOG": str((out / "notify.log").resolve()),
           "PLANC_OUTBOX": str((out / "outbox.jsonl").resolve())}
    runner = Runner(bundle, RunConfig(run_root=out / "runs", tool_env=env, trace=True))
    try:
        t2 = time.perf_counter()
        result, run_dir = runner.run(inputs)
        t3 = time.perf_counter()
    finally:
        runner.close()
    print(f"\n== ran with planrt in {(t3 - t2) * 1e3:.1f} ms: {result.status.value}"
          + (f" ({result.error})" if result.error else ""))
    print(_host_report(res.graph, m, runner), end="")
    for name, value in result.outputs.items():
        print(f"   {name} = {_show(value)}")
    if run_dir is not None:
        result.tracer.write(run_dir.path / "trace.json")
        print(f"   journal, audit log and trace: {run_dir.path}")
        run_dir.close()
    mlir_ref = _mlir_reference(plan)
    ref = Runner(bundle, RunConfig(compute=jax_compute(res.graph, mlir_ref), tool_env=env))
    try:
        expected, _ = ref.run(inputs)
    finally:
        ref.close()
    worst = _compare(result.outputs, expected.outputs)
    print(f"\n== same plan computed with JAX: max abs difference {worst:.3g}")
    return 0 if result.status.value != "failed" and worst < 1e-4 else 1


def _deployment_line(graph: Any) -> str:
    """Which deployment the printed schedule was made for: a prediction for it, not this host."""
    from planc.compiler.costs.profiles import ProfileError, load_profile

    s = graph.info.schedule
    if s is None:
        return "(none)"
    try:
        about = load_profile().deployments[s.deployment].description
    except (ProfileError, KeyError):
        about = ""
    return (f"predicted for deployment '{s.deployment}'" + (f" ({about})" if about else "")
            + ", the one the plan was optimized for (--deploy picks another); it is not this host")


def _host_report(graph: Any, manifest: dict[str, Any], runner: Any) -> str:
    """What this host actually ran: its CPU and GPUs, and per module the variant chosen here
    beside the device the schedule put it on."""
    from planc.runtime.host.detect import variant_problem

    s = graph.info.schedule
    placed = s.placement() if s is not None else {}
    kinds = dict(s.devices) if s is not None else {}
    host = runner.host
    gpus = ", ".join(str(d) for d in host.cuda) or "no CUDA GPU"
    lines = [f"   this host: {host.arch}, {len(host.features)} CPU features, {gpus} (`planrt inspect` says more)"]
    for name, variant in sorted(runner.variants.items()):
        mod = manifest["modules"][name]
        device = placed.get(name)
        kind = kinds.get(device, "")
        where = f"scheduled on {device} ({kind})" if device else "not in the schedule"
        line = f"   module {name} ({', '.join(mod['members'])}): {where}; this host runs {variant}"
        if kind and kind != variant:
            why = variant_problem(kind, mod["variants"], runner.host) if kind in mod["variants"] else None
            line += f" instead ({kind}: {why})" if why else f" instead (ranked above {kind} here)"
        lines.append(line)
    return "\n".join(lines) + "\n"


def _example_input(decl: dict) -> np.ndarray:
    if decl["name"] == "frame" and decl["shape"] == [1, 64, 64, 3]:
        return _frame()
    rng = np.random.default_rng(0)
    return rng.standard_normal(decl["shape"]).astype(np.float32)


def _mlir_reference(plan: Path) -> dict[str, Any]:
    # The defects example ships the JAX function its classifier.mlir was exported from.
    if plan.parent.joinpath("models.py").exists() and plan.stem == "defects":
        import importlib.util

        spec = importlib.util.spec_from_file_location("_demo_models", plan.parent / "models.py")
        mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        spec.loader.exec_module(mod)  # type: ignore[union-attr]
        return {"classifier": mod.classifier_reference}
    return {}


def _show(v: Any) -> str:
    if isinstance(v, np.ndarray):
        return np.array2string(v, precision=4, suppress_small=True)
    return "skipped" if v is None else str(v)


def _compare(a: dict[str, Any], b: dict[str, Any]) -> float:
    worst = 0.0
    for k, v in a.items():
        if isinstance(v, np.ndarray):
            worst = max(worst, float(np.max(np.abs(v.astype(np.float64) - np.asarray(b[k], np.float64)))))
        elif v != b[k]:
            print(f"   mismatch in {k}: {v!r} vs {b[k]!r}", file=sys.stderr)
            worst = float("inf")
    return worst
