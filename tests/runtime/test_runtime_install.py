"""`pip install planc` (no extras) into a fresh venv gives planrt without jax or iree.compiler."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from planc.compiler.bundle.writer import write_bundle

REPO = Path(__file__).resolve().parents[2]
WHEELS = Path(os.environ.get("PLANC_TEST_WHEELS", Path.home() / ".cache" / "planc-test-wheels"))
COMPILER_ONLY = ("jax", "jaxlib", "iree.compiler", "lark", "networkx", "safetensors", "matplotlib")
SOURCES = ("pyproject.toml", "README.md", "planc", "dsl", "compiler", "runtime")

# Runs inside the fresh venv: imports every planrt module, then reports what got imported and
# what is installed at all.
PROBE = """
import importlib, importlib.util, json, pkgutil, sys, sysconfig
import planc.runtime
mods = sorted(m.name for m in pkgutil.walk_packages(planc.runtime.__path__, "planc.runtime."))
for m in mods:
    importlib.import_module(m)
from planc.runtime.bundle.loader import load_bundle, summarize
b = load_bundle(sys.argv[1])
def findable(name):
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False
print(json.dumps({
    "modules": mods, "loaded": sorted(sys.modules), "summary": summarize(b),
    "findable": {n: findable(n) for n in json.loads(sys.argv[2])},
    "purelib": sysconfig.get_paths()["purelib"],
}))
"""


def _run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False, **kw)  # type: ignore[call-overload]


def _base_requirements() -> list[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    return [*project["project"]["dependencies"], *project["build-system"]["requires"]]


def _fill_wheel_cache() -> str | None:
    """`pip download` the base requirements into the cache; the error text when that fails (no network)."""
    WHEELS.mkdir(parents=True, exist_ok=True)
    out = _run([sys.executable, "-m", "pip", "download", "-q", "-d", str(WHEELS), *_base_requirements()])
    return None if out.returncode == 0 else out.stderr.strip()[-300:]


def _copy_sources(dest: Path) -> Path:
    # Build from a copy: a non-editable build writes build/ and *.egg-info into its source tree.
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    dest.mkdir()
    for name in SOURCES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        else:
            shutil.copy2(src, dest / name)
    return dest


@pytest.mark.slow
def test_runtime_installs_alone(tmp_path: Path) -> None:
    download_error = _fill_wheel_cache()
    venv = tmp_path / "venv"
    out = _run([sys.executable, "-m", "venv", str(venv)])
    assert out.returncode == 0, out.stderr
    py, planrt = venv / "bin" / "python", venv / "bin" / "planrt"
    src = _copy_sources(tmp_path / "src")
    # No index: every dependency must come from the cache of numpy + iree-base-runtime (+ setuptools to
    # build), so a compiler dependency in the base requirements fails the install.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    out = _run([str(py), "-m", "pip", "install", "-q", "--no-index", "--find-links", str(WHEELS),
                "--disable-pip-version-check", str(src)], env=env)
    if out.returncode != 0 and download_error and "No matching distribution" in out.stderr:
        pytest.skip(f"wheel cache {WHEELS} is incomplete and `pip download` failed (no network?): "
                    f"{download_error}")
    assert out.returncode == 0, out.stdout + out.stderr

    bundle = tmp_path / "demo.planb"
    digest = write_bundle(bundle, {"schema": 1, "plan": "demo", "tools": {
        "t": {"kind": "exec", "path": "tools/t/t.sh"}}}, {"tools/t/t.sh": b"#!/bin/sh\ncat\n"})
    out = _run([str(py), "-I", "-c", PROBE, str(bundle), json.dumps(COMPILER_ONLY)], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    probe = json.loads(out.stdout)
    assert "planc.runtime.bundle.loader" in probe["modules"]
    leaked = [m for m in probe["loaded"] if m.split(".")[0] in {"jax", "jaxlib", "lark", "networkx"}
              or m.startswith(("iree.compiler", "planc.compiler", "planc.dsl"))]
    assert leaked == [], f"importing planc.runtime pulled in {leaked}"
    assert probe["findable"] == dict.fromkeys(COMPILER_ONLY, False), "a compiler dependency got installed"
    assert probe["summary"]["sha256"] == digest

    # The package-dir mapping puts everything under planc/, nothing at the top of site-packages.
    site = Path(probe["purelib"])
    assert (site / "planc" / "runtime" / "bundle" / "loader.py").is_file()
    assert (site / "planc" / "dsl" / "grammar.lark").is_file()
    assert not any((site / top).exists() for top in ("runtime", "compiler", "dsl"))

    out = _run([str(planrt), "--help"], cwd=tmp_path)
    assert out.returncode == 0 and "planrt" in out.stdout, out.stdout + out.stderr
    # planrt serve is the extra planc[serve]: without it, it says how to install it (no traceback).
    assert "planc.runtime.serve.app" in probe["modules"]  # imported above without starlette
    assert not any(m.split(".")[0] in {"starlette", "uvicorn", "prometheus_client"} for m in probe["loaded"])
    out = _run([str(planrt), "serve", str(bundle)], cwd=tmp_path)
    assert out.returncode == 1 and "pip install 'planc[serve]'" in out.stderr, out.stdout + out.stderr

    # And it runs a real compiled bundle there, with the same numbers as here.
    import numpy as np
    from planc.compiler.bundle.build import BuildOptions, build_bundle
    from planc.runtime.bundle.loader import load_bundle
    from planc.runtime.engine.runner import RunConfig, Runner

    real = tmp_path / "defects.planb"
    build_bundle(REPO / "examples/defects/defects.plan", real, options=BuildOptions(progress=None))
    frame = np.random.default_rng(3).random((1, 64, 64, 3), dtype=np.float32)
    np.save(tmp_path / "frame.npy", frame)
    env = {**os.environ, "PLANC_NOTIFY_LOG": str(tmp_path / "notify.log")}
    out = _run([str(planrt), "run", str(real), "-i", f"frame={tmp_path / 'frame.npy'}", "--auto-approve",
                "--run-dir", str(tmp_path / "runs"), "--output-dir", str(tmp_path / "out")], cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    runner = Runner(load_bundle(real), RunConfig(tool_env={"PATH": os.environ["PATH"],
                                                           "PLANC_NOTIFY_LOG": str(tmp_path / "n2.log")}))
    try:
        here, _ = runner.run({"frame": frame})
    finally:
        runner.close()
    for name in ("label", "worst"):
        np.testing.assert_array_equal(np.load(tmp_path / "out" / f"{name}.npy"), here.outputs[name])
