"""Shared helpers of the end-to-end tests (a uniquely named module: `conftest` names collide)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

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
