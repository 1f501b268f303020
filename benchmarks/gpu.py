"""The examples on this machine's NVIDIA GPU: compiled for its cuda-smXX, run with planrt, checked and timed against JAX.

    .venv/bin/python benchmarks/gpu.py [--runs 50] [--rounds 5] [--plans defects,sensors] [--target T]

Installs nothing and reaches no network: it needs the GPU's driver (libcuda), this project's
environment (planc[dev]) and, to time jax.jit on the GPU, JAX's CUDA plugin (jax[cuda12]);
without the plugin jax.jit runs on the CPU and the table says so. With no NVIDIA GPU it
exits 2 saying what the CUDA probe found; `--target x86_64-avx2` runs the same checks and
timings on the CPU instead (a dry run of this script where there is no GPU).

Per example plan: the bundle is built for the GPU's target (the highest cuda-smXX planc has
that the device's compute capability runs) plus the deployment's CPU target; planrt must pick
the CUDA variant for every module; every output must match JAX (float64-free, matmul
precision "highest", rtol 1e-5). Timings, medians over --rounds of the mean over --runs:
  module: planrt's hot path (LoadedModule.invoke on device buffers) against jax.jit of the
          same merged group on device arrays, both synchronised by reading one output back;
  plan:   a whole planrt run (tools included) against the same run with jax.jit computing.
Exit: 0 everything matched, 1 a mismatch or a failure, 2 no NVIDIA GPU (or none planc targets).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from planc.runtime.host.detect import Host, detect

__all__ = ["main", "pick_target"]

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
PLANS = {"defects": "defects/defects.plan", "triage": "agent/agent.plan", "sensors": "sensors/sensors.plan",
         "vib_screen": "sensors/sensors.plan"}
EXIT_NO_GPU = 2


class NoGpu(RuntimeError):
    """No NVIDIA GPU here that planc compiles for; says what was found."""


def pick_target(host: Host) -> str:
    """The best cuda-smXX target this host's GPU runs (sm_XX or higher; PTX is forward compatible)."""
    from planc.compiler.codegen.targets import Backend, Target

    cuda = sorted((t for t in Target if t.backend is Backend.CUDA), key=lambda t: t.spec.sm or 0, reverse=True)
    names = ", ".join(t.value for t in cuda)
    if not host.cuda:
        notes = "; ".join(host.notes) or "nothing"
        raise NoGpu(f"no NVIDIA GPU found (CUDA probe: {notes}); this benchmark needs one. "
                    f"On a CPU-only machine, `--target x86_64-avx2` runs the same checks on the CPU.")
    if host.cuda_sm is None:
        return cuda[-1].value  # capability unreadable: the oldest architecture planc has
    for t in cuda:
        if (t.spec.sm or 0) <= host.cuda_sm:
            return t.value
    raise NoGpu(f"the GPU is sm_{host.cuda_sm}; planc compiles for {names} only")


def _deployment(target: str) -> tuple[str, tuple[str, ...]]:
    """The smallest shipped deployment with a device of `target`, and the targets to build."""
    from planc.compiler.costs.profiles import load_profile

    fits = [d for d in load_profile().deployments.values() if any(i.spec.target.value == target for i in d.devices)]
    if not fits:
        raise SystemExit(f"no shipped deployment has a {target} device")
    best = min(fits, key=lambda d: (len(d.devices), d.name))
    return best.name, tuple(dict.fromkeys([target, *(i.spec.target.value for i in best.devices)]))


def _inputs(manifest: dict[str, Any], seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)  # the end-to-end tests' inputs
    out = {}
    for i in manifest["inputs"]:
        a = rng.standard_normal(i["shape"]).astype(np.float32)
        out[i["name"]] = np.abs(a) if i["name"] == "frame" else a
    return out


def _mlir_reference(plan_file: Path) -> dict[str, Callable[..., Any]]:
    spec = importlib.util.spec_from_file_location(f"_gpu_ref_{plan_file.parent.name}", plan_file.parent / "models.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return {"classifier": mod.classifier_reference} if hasattr(mod, "classifier_reference") else {}


def _jax_groups(graph: Any, mlir_ref: dict[str, Callable[..., Any]]) -> dict[str, Callable[..., Any]]:
    """Each merged group as one jax.jit function of its module's inputs (what jax_compute runs)."""
    import jax
    from planc.compiler.codegen.group import compose
    from planc.compiler.codegen.lower import groups, member, value_types
    from planc.compiler.ir.graph import ValueRef

    types = value_types(graph)
    out: dict[str, Callable[..., Any]] = {}
    for g in groups(graph):
        members = [member(graph, m, types, mlir_reference=mlir_ref) for m in g.members]
        inputs = [str(a) for a in g.args if isinstance(a, ValueRef)]
        out[g.name] = jax.jit(compose(members, inputs, [str(v) for v in g.exports]))
    return out


def _median_per_call(call: Callable[[], Any], sync: Callable[[Any], Any], runs: int, rounds: int) -> float:
    sync(call())  # warm-up: loads, compiles, fills caches
    samples = []
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(runs - 1):
            call()
        sync(call())
        samples.append((time.perf_counter() - t) / runs)
    return statistics.median(samples)


def _compare(plan: str, ours: dict[str, Any], ref: dict[str, Any]) -> list[str]:
    problems = []
    for name, want in ref.items():
        got = ours.get(name)
        if isinstance(want, np.ndarray):
            if not isinstance(got, np.ndarray) or got.shape != want.shape or got.dtype != want.dtype:
                problems.append(f"{plan}.{name}: {got!r} is not a {want.dtype}{list(want.shape)} array")
            elif not np.allclose(got, want, rtol=1e-5, atol=1e-6):
                err = float(np.max(np.abs(got.astype(np.float64) - want) / (np.abs(want) + 1e-6)))
                problems.append(f"{plan}.{name}: differs from JAX (max relative error {err:.3g})")
        elif name != "reply" and got != want:  # reply carries the run's own idempotency key
            problems.append(f"{plan}.{name}: {got!r} != JAX's {want!r}")
    return problems


def _bench_plan(plan: str, target: str, deploy: str, targets: tuple[str, ...], out: Path, jax_dev: Any,
                args: argparse.Namespace) -> tuple[list[tuple[str, str, float, float]], list[str]]:
    import jax
    from planc.compiler.bundle.build import BuildOptions, build_bundle
    from planc.compiler.codegen.reference import jax_compute
    from planc.runtime.bundle.loader import load_bundle
    from planc.runtime.engine.runner import RunConfig, Runner

    file = EXAMPLES / PLANS[plan]
    built = build_bundle(file, out / f"{plan}.planb", plan=plan,
                         options=BuildOptions(progress=None, deploy=deploy, targets=targets))
    bundle = load_bundle(built.path)
    inputs = _inputs(bundle.manifest)
    env = {"PLANC_NOTIFY_LOG": str(out / "notify.log"), "PLANC_OUTBOX": str(out / "outbox.jsonl"),
           "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    ours = Runner(bundle, RunConfig(tool_env=env))
    mlir_ref = _mlir_reference(file)
    with jax.default_device(jax_dev):
        ref = Runner(bundle, RunConfig(compute=jax_compute(built.graph, mlir_ref), tool_env=env))
        try:
            wrong = {m: v for m, v in ours.variants.items() if v != target}
            problems = [f"{plan}: planrt chose {wrong} instead of {target}"] if wrong else []
            got, _ = ours.run(inputs)
            want, _ = ref.run(inputs)
            problems += _compare(plan, got.outputs, want.outputs)
            rows = _module_rows(ours, _jax_groups(built.graph, mlir_ref), jax_dev, args)
            rows.append(("(whole run)", ",".join(sorted(set(ours.variants.values()))),
                         _median_per_call(lambda: ours.run(inputs), lambda r: r, args.runs, args.rounds),
                         _median_per_call(lambda: ref.run(inputs), lambda r: r, args.runs, args.rounds)))
        finally:
            ours.close()
            ref.close()
    return rows, problems


def _module_rows(runner: Any, jitted: dict[str, Callable[..., Any]], jax_dev: Any,
                 args: argparse.Namespace) -> list[tuple[str, str, float, float]]:
    rng = np.random.default_rng(1)
    rows = []
    for name, mod in sorted(runner.modules.items()):
        arrays = [rng.standard_normal(i["shape"]).astype(np.float32) if i["dtype"] == "f32" else
                  np.zeros(i["shape"], dtype=mod.sig.inputs[k])
                  for k, i in enumerate(runner.manifest["modules"][name]["inputs"])]
        ours, theirs = _time_module(mod, jitted[name], arrays, jax_dev, args)
        rows.append((name, runner.variants[name], ours, theirs))
    return rows


def _time_module(mod: Any, fn: Callable[..., Any], arrays: list[np.ndarray], jax_dev: Any,
                 args: argparse.Namespace) -> tuple[float, float]:
    """Seconds per call: planrt's LoadedModule.invoke and jax.jit, inputs already on the device."""
    import jax

    views = [mod.device.to_device(a, t) for a, t in zip(arrays, mod.sig.inputs)]
    ours = _median_per_call(lambda: mod.invoke(views), lambda o: mod.device.to_host(o[0], mod.sig.outputs[0]),
                            args.runs, args.rounds)
    on_dev = [jax.device_put(a, jax_dev) for a in arrays]
    theirs = _median_per_call(lambda: fn(*on_dev), jax.block_until_ready, args.runs, args.rounds)
    return ours, theirs


def _jax_device(gpu: bool) -> tuple[Any, str]:
    import jax

    jax.config.update("jax_default_matmul_precision", "highest")  # no TF32 in the reference
    if not gpu:
        return jax.devices("cpu")[0], "cpu"
    try:
        return jax.devices("gpu")[0], "gpu"
    except RuntimeError as e:
        print(f"warning: JAX has no GPU backend here ({str(e).splitlines()[0]}); jax.jit is timed on the CPU. "
              "Install jax[cuda12] into this environment beforehand to time it on the GPU.", file=sys.stderr)
        return jax.devices("cpu")[0], "cpu (no JAX GPU backend)"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=50, help="calls per timing round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--plans", default=",".join(PLANS), help=f"comma-separated, from: {', '.join(PLANS)}")
    ap.add_argument("--target", help="build for this target instead of the GPU's (e.g. x86_64-avx2: a CPU dry run)")
    args = ap.parse_args(argv)
    plans = [p.strip() for p in args.plans.split(",") if p.strip()]
    unknown = [p for p in plans if p not in PLANS]
    if unknown:
        ap.error(f"unknown plan(s) {', '.join(unknown)}; expected some of: {', '.join(PLANS)}")
    host = detect()
    try:
        target = args.target or pick_target(host)
    except NoGpu as e:
        print(f"gpu.py: {e}", file=sys.stderr)
        return EXIT_NO_GPU
    deploy, targets = _deployment(target)
    jax_dev, jax_where = _jax_device(target.startswith("cuda-"))
    gpus = ", ".join(f"{d.name} (sm_{d.sm})" for d in host.cuda) or "none"
    print(f"host: {host.arch}; GPUs: {gpus}; target {target}; deployment {deploy}; bundle targets {', '.join(targets)}")
    print(f"jax.jit on: {jax_where}; medians of {args.rounds} rounds x {args.runs} calls\n")
    print(f"{'plan':<11} {'module':<12} {'planrt variant':<26} {'planrt':>11} {'jax.jit':>11} {'jax/planrt':>10}")
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="planc-gpu-") as tmp:
        for plan in plans:
            (Path(tmp) / plan).mkdir()
            try:
                rows, bad = _bench_plan(plan, target, deploy, targets, Path(tmp) / plan, jax_dev, args)
            except Exception as e:  # noqa: BLE001 - report every plan, then fail
                problems.append(f"{plan}: {type(e).__name__}: {e}")
                continue
            problems += bad
            for module, variant, ours, theirs in rows:
                print(f"{plan:<11} {module:<12} {variant:<26} {ours * 1e3:>9.3f}ms {theirs * 1e3:>9.3f}ms "
                      f"{theirs / ours:>9.2f}x")
    print()
    for p in problems:
        print(f"MISMATCH/FAILURE: {p}")
    print("all outputs match JAX" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
