"""Shared fixtures for the end-to-end tests: example bundles built once per session."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"

# (plan file, plan name) for every plan the repository ships.
PLANS = [("defects/defects.plan", "defects"), ("agent/agent.plan", "triage"),
         ("sensors/sensors.plan", "sensors"), ("sensors/sensors.plan", "vib_screen")]


def example_inputs(manifest: dict, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for i in manifest["inputs"]:
        a = rng.standard_normal(i["shape"]).astype(np.float32)
        out[i["name"]] = np.abs(a) if i["name"] == "frame" else a
    return out


def mlir_references(plan_file: Path) -> dict:
    import importlib.util

    models = plan_file.parent / "models.py"
    spec = importlib.util.spec_from_file_location(f"_ref_{plan_file.parent.name}", models)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return {"classifier": mod.classifier_reference} if hasattr(mod, "classifier_reference") else {}


@pytest.fixture(scope="session")
def bundles(tmp_path_factory) -> dict[str, object]:
    """Every example plan compiled to a bundle (through the module cache under tmp)."""
    from planc.compiler.build import BuildOptions, build_bundle

    os.environ.setdefault("PLANC_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    out = tmp_path_factory.mktemp("bundles")
    built = {}
    for file, plan in PLANS:
        built[plan] = build_bundle(EXAMPLES / file, out / f"{plan}.planb", plan=plan,
                                   options=BuildOptions(progress=None))
    return built


@pytest.fixture
def tool_env(tmp_path) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PLANC_NOTIFY_LOG": str(tmp_path / "notify.log"),
            "PLANC_OUTBOX": str(tmp_path / "outbox.jsonl")}
