"""The server a user would write instead of `planrt serve`: FastAPI + `jax.jit` of the same pipeline.

It takes the same Open Inference Protocol JSON requests (so one load generator drives both), runs
the example's own JAX model functions under one `jax.jit` per plan, and runs the defects plan's
notify tool the same way the plan does (when worst > 0.5). Started by benchmarks/serve.py:

    .venv/bin/python benchmarks/serve_baseline.py --port 8001
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import uvicorn
from fastapi import Body, FastAPI, HTTPException

ROOT = Path(__file__).resolve().parents[1]


def _models(example: str):
    spec = importlib.util.spec_from_file_location(f"{example}_models", ROOT / "examples" / example / "models.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def defects_pipeline():
    m = _models("defects")
    params = {k: jnp.asarray(v) for k, v in np.load(ROOT / "examples/defects/detector.npz").items()}

    @jax.jit
    def run(frame):
        pre = m.normalize(frame)
        return m.classifier_reference(pre), jnp.max(m.detector(params, pre))

    def infer(inputs: dict[str, np.ndarray]) -> dict:
        label, worst = run(inputs["frame"])
        label, worst = np.asarray(label), np.asarray(worst)
        out = {"label": label, "worst": worst}
        if worst > 0.5:  # the plan's guarded tool, called as planrt calls it
            req = json.dumps({"args": [label.tolist(), float(worst)]})
            done = subprocess.run([str(ROOT / "examples/defects/tools/notify.sh")], input=req.encode(),
                                  capture_output=True, timeout=2, check=True)
            out["alert"] = json.loads(done.stdout)
        return out

    return infer


def sensors_pipeline():
    m = _models("sensors")
    p = {k: jnp.asarray(v) for k, v in np.load(ROOT / "examples/sensors/sensors.npz").items()}

    @jax.jit
    def run(audio, vibration, temperature):
        spec = m.spectrum(p, audio)
        t_mean, t_spread = m.temp_stats(temperature)
        health = m.fuse(p, m.audio_net(p, spec), m.vib_net(p, vibration), t_mean, t_spread)
        return health, jnp.argmax(health).astype(jnp.int32), jnp.min(health), jnp.sum(t_spread), jnp.max(spec)

    def infer(inputs: dict[str, np.ndarray]) -> dict:
        names = ("health", "worst_unit", "low", "total", "peak")
        return dict(zip(names, map(np.asarray, run(inputs["audio"], inputs["vibration"], inputs["temperature"]))))

    return infer


PIPELINES = {"defects": defects_pipeline(), "sensors": sensors_pipeline()}
DTYPES = {"FP32": np.float32, "INT32": np.int32}
app = FastAPI()


@app.get("/v2/health/ready")
def ready() -> dict:
    return {"ready": True}


@app.post("/v2/models/{name}/infer")
def infer(name: str, request: dict = Body(...)) -> dict:  # noqa: B008 (FastAPI's way)
    if name not in PIPELINES:
        raise HTTPException(404, f"unknown model {name}")
    inputs = {t["name"]: np.asarray(t["data"], DTYPES[t["datatype"]]).reshape(t["shape"]) for t in request["inputs"]}
    outputs = []
    for key, value in PIPELINES[name](inputs).items():
        if isinstance(value, np.ndarray):
            dt = "INT32" if value.dtype == np.int32 else "FP32"
            outputs.append({"name": key, "datatype": dt, "shape": list(value.shape),
                            "data": value.reshape(-1).tolist()})
        else:
            outputs.append({"name": key, "datatype": "BYTES", "shape": [1], "data": [json.dumps(value)]})
    return {"model_name": name, "outputs": outputs}


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8001)
    args = ap.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
