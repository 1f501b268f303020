"""Emulation tier helpers: CPU-only example bundles with JAX references, planrt under qemu, comparison."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["CPU_TARGETS", "ROOT", "Emulated", "Example", "assert_matches", "build_examples", "overlay",
           "probe", "tool_env"]

ROOT = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("probe.py")
# Every CPU target the example plans name; AVX-512 stays in so that a Haswell must refuse it.
CPU_TARGETS = ("x86_64-avx2", "x86_64-avx512", "aarch64-neon")


def _e2e() -> Any:
    """tests/e2e/e2e_support.py's plan list and helpers (the same plans, inputs and references)."""
    spec = importlib.util.spec_from_file_location("planc_e2e_plans", ROOT / "tests" / "e2e" / "e2e_support.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@dataclass(frozen=True)
class Example:
    """One example plan compiled for the CPU targets, its inputs as .npy files, and what JAX computes."""

    plan: str
    bundle: Path
    inputs: dict[str, Path]
    expected: dict[str, Any]
    status: str
    variants: dict[str, tuple[str, ...]]  # module -> targets the bundle offers

    def input_args(self) -> list[str]:
        return [f"{name}={path}" for name, path in sorted(self.inputs.items())]


def tool_env(folder: Path) -> dict[str, str]:
    """The example tools' log files inside `folder`, and nothing else from the test's environment."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PLANC_NOTIFY_LOG": str(folder / "notify.log"),
            "PLANC_OUTBOX": str(folder / "outbox.jsonl")}


def build_examples(out: Path) -> dict[str, Example]:
    """Every example plan built for CPU_TARGETS, plus `x86_only` (vib_screen, x86_64-avx512 alone)."""
    from planc.compiler.bundle.build import BuildOptions, build_bundle
    from planc.compiler.codegen.reference import jax_compute
    from planc.runtime.bundle.loader import load_bundle
    from planc.runtime.engine.runner import RunConfig, Runner

    e2e = _e2e()
    examples = {}
    plans: list[tuple[str, str, str, tuple[str, ...]]] = [(f, p, p, CPU_TARGETS) for f, p in e2e.PLANS]
    plans.append(("sensors/sensors.plan", "vib_screen", "x86_only", ("x86_64-avx512",)))
    for file, plan, name, targets in plans:
        built = build_bundle(e2e.EXAMPLES / file, out / f"{name}.planb", plan=plan,
                             options=BuildOptions(progress=None, targets=targets))
        folder = out / name
        folder.mkdir()
        inputs = e2e.example_inputs(built.manifest)
        paths = {}
        for key, value in inputs.items():
            np.save(folder / f"{key}.npy", value)
            paths[key] = folder / f"{key}.npy"
        compute = jax_compute(built.graph, e2e.mlir_references(e2e.EXAMPLES / file))
        runner = Runner(load_bundle(built.path), RunConfig(compute=compute, tool_env=tool_env(folder)))
        try:
            result, _ = runner.run(inputs)
        finally:
            runner.close()
        variants = {m: tuple(sorted(rec["variants"])) for m, rec in built.manifest["modules"].items()}
        examples[name] = Example(name, built.path, paths, result.outputs, result.status.value, variants)
    return examples


def overlay(folder: Path) -> Path:
    """A `planc` package holding only its own modules and planc.runtime (a link to runtime/), for the
    emulated Python: what `pip install planc` puts there."""
    pkg = folder / "planc"
    pkg.mkdir(parents=True)
    for module in (ROOT / "planc").glob("*.py"):
        (pkg / module.name).write_text(module.read_text())
    (pkg / "runtime").symlink_to(ROOT / "runtime", target_is_directory=True)
    return folder


@dataclass(frozen=True)
class Emulated:
    """What one emulated planrt process reported."""

    rc: int
    host: dict[str, Any]
    summary: dict[str, Any]
    outputs: dict[str, Any]
    run_seconds: list[float]
    wall: float
    stderr: str


def probe(prefix: list[str], example: Example, out: Path, env: dict[str, str], *, repeat: int) -> Emulated:
    """Runs tests/emulation/probe.py as `prefix + [probe.py, ...]` (the emulated interpreter)."""
    out.mkdir(parents=True, exist_ok=True)
    argv = [*prefix, str(PROBE), str(example.bundle), str(out), "--repeat", str(repeat)]
    for spec in example.input_args():
        argv += ["-i", spec]
    t = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600, check=False, cwd=out)
    wall = time.perf_counter() - t
    report_file = out / "probe.json"
    if not report_file.is_file():
        raise AssertionError(f"the emulated probe wrote no report (exit {proc.returncode}):\n"
                             f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    report = json.loads(report_file.read_text())
    outputs_dir = out / "outputs"
    summary = json.loads((outputs_dir / "summary.json").read_text()) if report["rc"] == 0 else {}
    outputs: dict[str, Any] = {}
    for f in sorted(outputs_dir.glob("*")) if report["rc"] == 0 else ():
        if f.suffix == ".npy":
            outputs[f.stem] = np.load(f)
        elif f.suffix == ".json" and f.stem != "summary":
            outputs[f.stem] = json.loads(f.read_text())
    return Emulated(report["rc"], report["host"], summary, outputs, report["run_seconds"], wall, proc.stderr)


def assert_matches(example: Example, got: Emulated) -> None:
    """Same status and outputs as the JAX reference (arrays to rtol 1e-5, tool results exactly)."""
    assert got.summary["status"] == example.status, got.summary
    assert set(got.outputs) == set(example.expected), (sorted(got.outputs), sorted(example.expected))
    for name, want in example.expected.items():
        value = got.outputs[name]
        if isinstance(want, np.ndarray):
            assert value.dtype == want.dtype and value.shape == want.shape, name
            np.testing.assert_allclose(value, want, rtol=1e-5, atol=1e-6, err_msg=f"{example.plan}: {name}")
        elif name == "reply" and isinstance(want, dict):  # carries the run's own idempotency key
            assert value["status"] == want["status"], name
        else:
            assert value == want, name
