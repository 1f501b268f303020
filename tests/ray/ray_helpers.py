"""Helpers of the Ray tests: a local Ray cluster on loopback, brought up with `planrt node start`.

Nodes listen on their own loopback addresses (n0 the head at 127.0.X.2, n1 at 127.0.X.3),
each labelled as a different CPU (`--host`, which also sets PLANRT_HOST for its workers).
Token authentication is on, with the token in a temp file (nothing under $HOME). Every
node is stopped at the end, and the test fails if any of its processes is left.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
PLANS = Path(__file__).parent / "plans"
CRASH_PLAN = ROOT / "tests" / "e2e" / "plans" / "crash" / "crash.plan"
PLANRT = [sys.executable, "-m", "planc.runtime.cli"]
AVX2, AVX512 = "x86_64:x86-64-v3", "x86_64:x86-64-v4"
# Each pytest-xdist worker that runs cluster tests gets a cluster of its own, on its own
# loopback range (127.0.10.x for gw0, 127.0.11.x for gw1, 127.0.9.x without xdist).
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
_NET = f"127.0.{10 + int(_WORKER[2:]) if _WORKER.startswith('gw') else 9}"
NODE_IPS = {"n0": f"{_NET}.2", "n1": f"{_NET}.3"}
ISA_VARIANT = {"avx2": "x86_64-avx2", "avx512": "x86_64-avx512"}


def _free_port(ip: str) -> int:
    with socket.socket() as s:
        s.bind((ip, 0))
        return s.getsockname()[1]


class LocalCluster:
    """Ray nodes started here through `planrt node start`; killed or stopped by name."""

    def __init__(self, root: Path):
        self.root = root
        self.temp_dir = Path(tempfile.mkdtemp(prefix="prt", dir="/tmp"))  # short: Ray's socket paths
        token = root / "token"
        token.write_text(os.urandom(32).hex())
        self.env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token),
                    "RAY_USAGE_STATS_ENABLED": "0", "HOME": str(root),
                    # Notice a dead node within a few seconds (Ray's default is about 30 s).
                    "RAY_health_check_period_ms": "1000", "RAY_health_check_timeout_ms": "1000",
                    "RAY_health_check_failure_threshold": "3"}
        self.env.pop("RAY_ADDRESS", None)
        self.port = _free_port(NODE_IPS["n0"])
        self.address = f"{NODE_IPS['n0']}:{self.port}"
        self.hosts: dict[str, str] = {}

    def start(self, name: str, host: str, *, head: bool = False) -> None:
        where = ["--head", "--port", str(self.port)] if head else ["--address", self.address]
        ip = NODE_IPS.get(name) or f"{_NET}.{10 + len(self.hosts)}"
        cmd = [*PLANRT, "node", "start", *where, "--name", name, "--host", host, "--node-ip-address", ip,
               "--num-cpus", "1", "--object-store-memory", str(80 * 2**20), "--temp-dir", str(self.temp_dir)]
        if head:
            cmd += ["--", "--dashboard-port", str(_free_port("127.0.0.1"))]
        res = subprocess.run(cmd, env=self.env, check=False, capture_output=True, text=True, timeout=180)
        assert res.returncode == 0, f"planrt node start {name} failed:\n{res.stdout}\n{res.stderr}"
        self.hosts[name] = host

    def state(self, name: str) -> dict:
        return json.loads((self.temp_dir / "planrt-nodes" / f"{name}.json").read_text())

    def alive(self, name: str) -> bool:
        from planc.runtime.ray.node import node_processes

        path = self.temp_dir / "planrt-nodes" / f"{name}.json"
        return path.exists() and bool(node_processes(self.state(name)["pgid"]))

    def ensure(self, name: str, host: str) -> None:
        if not self.alive(name):
            self.start(name, host)

    def kill(self, name: str) -> None:
        """SIGKILL every process of the node at once (its raylet and its workers): a machine dying."""
        from planc.runtime.ray.node import node_processes

        for pid in node_processes(self.state(name)["pgid"]):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        (self.temp_dir / "planrt-nodes" / f"{name}.json").unlink()

    def stop(self) -> list[int]:
        """`planrt node stop` for every node; returns the pids of any process that survived."""
        from planc.runtime.ray.node import node_processes, stop_processes

        folder = self.temp_dir / "planrt-nodes"
        groups = [json.loads(f.read_text())["pgid"] for f in folder.glob("*.json")] if folder.is_dir() else []
        subprocess.run([*PLANRT, "node", "stop", "--temp-dir", str(self.temp_dir)], check=False, env=self.env,
                       capture_output=True, timeout=120)
        time.sleep(0.5)  # a process that got SIGKILL a moment ago may not be gone from /proc yet
        left = sorted(pid for g in groups for pid in node_processes(g))
        stop_processes(set(left), grace=1.0)  # never leave a process behind, even when stop failed
        shutil.rmtree(self.temp_dir, ignore_errors=True)
        return left

    def planrt(self, *args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([*PLANRT, *args], env={**self.env, **(env or {})}, check=False, capture_output=True, text=True,
                              timeout=timeout)


def ray_slices(trace_file: Path) -> list[dict]:
    data = json.loads(Path(trace_file).read_text())
    events = data["traceEvents"] if isinstance(data, dict) else data
    return [e for e in events if e.get("cat") == "ray" and e.get("ph") == "X"]


def ray_instants(trace_file: Path) -> list[dict]:
    data = json.loads(Path(trace_file).read_text())
    events = data["traceEvents"] if isinstance(data, dict) else data
    return [e for e in events if e.get("cat") == "ray" and e.get("ph") in ("i", "I")]


def jax_outputs(built, inputs: dict, tool_env: dict | None = None) -> dict:
    """The plan's outputs with every group computed by JAX (compiler/codegen/reference.py)."""
    from planc.compiler.codegen.reference import jax_compute
    from planc.runtime.bundle.loader import load_bundle
    from planc.runtime.engine.runner import RunConfig, Runner

    runner = Runner(load_bundle(built.path), RunConfig(compute=jax_compute(built.graph), tool_env=tool_env))
    try:
        result, _ = runner.run(inputs)
    finally:
        runner.close()
    return result.outputs


def saved_outputs(folder: Path) -> dict:
    out = {}
    for f in sorted(Path(folder).iterdir()):
        if f.suffix == ".npy":
            out[f.stem] = np.load(f)
        elif f.suffix == ".json" and f.name != "summary.json":
            out[f.stem] = json.loads(f.read_text())
    return out


def wait_for_line(path: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return
        time.sleep(0.02)
    raise AssertionError(f"{path} stayed empty for {timeout} s")
