"""The Ray engine against the local engine, side by side in one process, on a local 2-node cluster.

1. Per-task overhead: the 32-task chain of tiny unmerged modules (benchmarks/plans/chain),
   run with `engine="local"` (IREE in this process) and `engine="ray"` (each task a method
   call on the node's long-lived actor), no journal: run time / 32. Also the floor: an
   empty actor round trip, and a thread-pool hand-off.
2. End-to-end latency of example plans on both engines, with and without a journal:
   fanout (3 groups; its schedule puts the two branches on different nodes) and sensors
   (one merged group). Plus the Ray engine's set-up (join the cluster, start the actors,
   load the modules), paid once per Runner.

The cluster: two nodes on loopback (127.0.20.2 head, labelled AVX2; 127.0.20.3 AVX-512),
started with `planrt node start`, one CPU each, stopped at the end.

Usage: .venv/bin/python benchmarks/ray.py [--repeat N]
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, this file's folder leads sys.path and `import ray` would find this file.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
PLANRT = [sys.executable, "-m", "planc.runtime.cli"]
HEAD, WORKER = "127.0.20.2", "127.0.20.3"


def _median(fn: Callable[[], object], repeat: int, inner: int = 1) -> float:
    fn()  # warm up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - t) / inner)
    return statistics.median(times)


def _cluster(tmp: Path) -> tuple[str, Path]:
    """Starts the two nodes; returns the head's address and Ray's temp dir (for `node stop`)."""
    with socket.socket() as s:
        s.bind((HEAD, 0))
        port = s.getsockname()[1]
    temp = Path(tempfile.mkdtemp(prefix="prb", dir="/tmp"))
    (tmp / "token").write_text(os.urandom(32).hex())
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(tmp / "token"), RAY_USAGE_STATS_ENABLED="0")
    common = ["--num-cpus", "1", "--object-store-memory", str(200 * 2**20), "--temp-dir", str(temp)]
    for args in (["--head", "--port", str(port), "--name", "n0", "--host", "x86_64:x86-64-v3",
                  "--node-ip-address", HEAD],
                 ["--address", f"{HEAD}:{port}", "--name", "n1", "--host", "x86_64:x86-64-v4",
                  "--node-ip-address", WORKER]):
        subprocess.run([*PLANRT, "node", "start", *args, *common], check=True, capture_output=True)
    return f"{HEAD}:{port}", temp


def _bundle(source: Path, out: Path, plan: str | None = None, **options):
    from planc.compiler.bundle.build import BuildOptions, build_bundle
    from planc.runtime.bundle.loader import load_bundle

    build_bundle(source, out, plan=plan, options=BuildOptions(progress=None, **options))
    return load_bundle(out)


def _runner(bundle, engine: str, address: str, root: Path | None = None):
    from planc.runtime.api.engines import remote_factory
    from planc.runtime.engine.runner import RunConfig, Runner

    return Runner(bundle, RunConfig(engine=engine, address=address, run_root=root, remote=remote_factory(engine)))


def overhead(tmp: Path, address: str, repeat: int) -> list[tuple[str, float, float]]:
    import ray

    bundle = _bundle(ROOT / "benchmarks/plans/chain/chain.plan", tmp / "chain.planb", max_group=1)
    n = len(bundle.manifest["tasks"])
    x = {"x": np.linspace(-1, 1, 64, dtype=np.float32)}
    local = _runner(bundle, "local", address)
    t_local = _median(lambda: local.run(x), repeat, 5) / n
    local.close()
    remote = _runner(bundle, "ray", address)
    try:
        t_ray = _median(lambda: remote.run(x), repeat, 5) / n
        actor = next(iter(remote.engine._actors.values()))
        t_rt = _median(lambda: ray.get(actor.ping.remote()), repeat, 50)
    finally:
        remote.close()
    with cf.ThreadPoolExecutor(1) as pool:
        t_pool = _median(lambda: pool.submit(int).result(), repeat, 200)
    return [("per task, 32-task chain", t_local, t_ray),
            ("floor: thread hand-off / empty actor round trip", t_pool, t_rt)]


def latency(tmp: Path, address: str, repeat: int) -> list[tuple[str, float, float]]:
    fan = _bundle(ROOT / "tests/ray/plans/fanout/fanout.plan", tmp / "fanout.planb", max_group=1,
                  deploy=str(ROOT / "tests/ray/plans/fanout/cluster.toml"))
    sensors = _bundle(ROOT / "examples/sensors/sensors.plan", tmp / "sensors.planb", plan="sensors")
    rng = np.random.default_rng(0)
    rows = []
    for name, bundle in (("fanout, 3 groups on 2 nodes", fan), ("sensors, 1 group", sensors)):
        inputs = {i["name"]: rng.standard_normal(i["shape"]).astype(np.float32) for i in bundle.manifest["inputs"]}
        setup: dict[str, float] = {}
        for journal in (False, True):
            times = {}
            for engine in ("local", "ray"):
                start = time.perf_counter()
                runner = _runner(bundle, engine, address, tmp / f"runs-{engine}" if journal else None)
                setup.setdefault(engine, time.perf_counter() - start)
                try:
                    times[engine] = _median(lambda r=runner, i=inputs: _run(r, i), repeat, 3)
                finally:
                    runner.close()
            rows.append((f"{name}, {'journaled' if journal else 'no journal'}", times["local"], times["ray"]))
        rows.append((f"{name}: set-up (ray: join, actors, load)", setup["local"], setup["ray"]))
    return rows


def _run(runner, inputs) -> None:
    _, run_dir = runner.run(inputs)
    if run_dir is not None:
        run_dir.close()


def _fmt(t: float) -> str:
    return f"{t * 1e3:>9.3f} ms"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args(argv)
    os.environ.setdefault("PLANC_CACHE_DIR", str(Path(tempfile.gettempdir()) / "planc-bench-cache"))
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        address, temp = _cluster(tmp)
        try:
            sections = [("Per-task overhead", overhead(tmp, address, args.repeat)),
                        ("End-to-end latency", latency(tmp, address, args.repeat))]
        finally:
            subprocess.run([*PLANRT, "node", "stop", "--temp-dir", str(temp)], check=False, capture_output=True)
    for title, rows in sections:
        print(f"\n{title} (median of {args.repeat})")
        print(f"| {'what':<62} | {'local':>12} | {'ray':>12} | {'ray/local':>9} |")
        print(f"|{'-' * 64}|{'-' * 14}|{'-' * 14}|{'-' * 11}|")
        for what, local, ray in rows:
            ratio = f"{ray / local:>8.1f}x" if local > 0 else f"{'-':>9}"
            print(f"| {what:<62} | {_fmt(local)} | {_fmt(ray)} | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
