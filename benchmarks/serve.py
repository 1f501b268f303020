"""`planrt serve` under load, against the server a user would write instead and against one
`planrt run` process per request; one asyncio load generator (keep-alive HTTP/1.1) for the servers.

For the defects and sensors examples, at concurrency 1, 4 and 16: requests per second and p50/p99
latency (client side), medians over --repeat rounds of --seconds each, for
1. planrt serve BUNDLES --workers CORES (this repository),
2. FastAPI + jax.jit of the same pipeline (benchmarks/serve_baseline.py), same JSON requests,
3. one `planrt run BUNDLE -i ... --no-journal` process per request (what there was before).
Every server's answer is checked against the others' before timing. The defects frame is the
dataset mean, so the guarded notify tool stays skipped in every system (as in benchmarks/runtime.py).

Usage: .venv/bin/python benchmarks/serve.py [--seconds 4] [--repeat 3] [--concurrency 1,4,16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PLANS = {"defects": "examples/defects/defects.plan", "sensors": "examples/sensors/sensors.plan"}


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _inputs(plan: str) -> dict[str, np.ndarray]:
    if plan == "defects":
        mean = np.array([0.485, 0.456, 0.406], np.float32)
        return {"frame": np.broadcast_to(mean, (1, 64, 64, 3)).copy()}
    rng = np.random.default_rng(0)
    return {"audio": rng.standard_normal((8, 256), np.float32), "vibration": rng.standard_normal((8, 128), np.float32),
            "temperature": rng.standard_normal((8, 16), np.float32)}


def _body(inputs: dict[str, np.ndarray]) -> bytes:
    return json.dumps({"inputs": [{"name": n, "shape": list(a.shape), "datatype": "FP32",
                                   "data": a.reshape(-1).tolist()} for n, a in inputs.items()]}).encode()


async def _conn_loop(port: int, request: bytes, stop_at: float, lat: list[float], errors: list[str]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < stop_at:
            t = time.perf_counter()
            writer.write(request)
            status, body = await _read_response(reader)
            if status != 200:
                errors.append(f"{status}: {body[:200]!r}")
            lat.append(time.perf_counter() - t)
    finally:
        writer.close()


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == "content-length":
            length = int(v)
    return status, await reader.readexactly(length)


def _request(path: str, body: bytes) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def load(port: int, path: str, body: bytes, concurrency: int, seconds: float) -> tuple[float, list[float]]:
    """(requests per second, latencies) of `concurrency` keep-alive connections for `seconds`."""
    lat: list[float] = []
    errors: list[str] = []
    req = _request(path, body)

    async def main() -> float:
        t0 = time.perf_counter()
        await asyncio.gather(*[_conn_loop(port, req, t0 + seconds, lat, errors) for _ in range(concurrency)])
        return time.perf_counter() - t0

    elapsed = asyncio.run(main())
    if errors:
        raise RuntimeError(f"{len(errors)} requests failed, e.g. {errors[0]}")
    return len(lat) / elapsed, lat


def per_process(bundle: Path, inputs: dict[str, np.ndarray], tmp: Path, concurrency: int,
                seconds: float) -> tuple[float, list[float]]:
    """One `planrt run` process per request, `concurrency` at a time, for `seconds` (at least 2 each)."""
    args = []
    for n, a in inputs.items():
        np.save(tmp / f"{n}.npy", a)
        args += ["-i", f"{n}={tmp / f'{n}.npy'}"]
    cmd = [str(BIN / "planrt"), "run", str(bundle), *args, "--no-journal", "--auto-approve", "--json"]
    lat: list[float] = []

    async def worker(stop_at: float) -> None:
        n = 0
        while n < 2 or time.perf_counter() < stop_at:
            t = time.perf_counter()
            p = await asyncio.create_subprocess_exec(*cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            _, err = await p.communicate()
            if p.returncode != 0:
                raise RuntimeError(f"planrt run failed: {err.decode()[-300:]}")
            lat.append(time.perf_counter() - t)
            n += 1

    async def main() -> float:
        t0 = time.perf_counter()
        await asyncio.gather(*[worker(t0 + seconds) for _ in range(concurrency)])
        return time.perf_counter() - t0

    elapsed = asyncio.run(main())
    return len(lat) / elapsed, lat


def _start(cmd: list[str], port: int, log: Path, env: dict[str, str]) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, stdout=open(log, "wb"), stderr=subprocess.STDOUT, env=env)  # noqa: SIM115
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{cmd[:3]} exited: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n")
                if b" 200 " in s.recv(100):
                    return proc
        except OSError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{cmd[:3]} did not get ready")


def _answer(port: int, plan: str, body: bytes) -> dict[str, np.ndarray]:
    async def once() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(_request(f"/v2/models/{plan}/infer", body))
        status, data = await _read_response(reader)
        writer.close()
        assert status == 200, data[:300]
        return data

    doc = json.loads(asyncio.run(once()))
    return {o["name"]: np.asarray(o["data"]) for o in doc["outputs"] if o["datatype"] != "BYTES"}


def _stats(rounds: list[tuple[float, list[float]]]) -> tuple[float, float, float]:
    rps = statistics.median(r for r, _ in rounds)
    p50 = statistics.median(float(np.percentile(lat, 50)) for _, lat in rounds)
    p99 = statistics.median(float(np.percentile(lat, 99)) for _, lat in rounds)
    return rps, p50, p99


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=4.0, help="length of one measured round")
    ap.add_argument("--repeat", type=int, default=3, help="rounds per point (medians are reported)")
    ap.add_argument("--concurrency", default="1,4,16")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2,
                    help="planrt serve --workers (default: the number of cores, as docs/serving.md advises)")
    ap.add_argument("--skip-processes", action="store_true", help="leave out the planrt-run-per-request rows")
    args = ap.parse_args(argv)
    levels = [int(c) for c in args.concurrency.split(",")]
    from planc.compiler.bundle.build import BuildOptions, build_bundle

    tmp = Path(tempfile.mkdtemp(prefix="planc-serve-bench-"))
    env = {**os.environ, "PLANC_NOTIFY_LOG": str(tmp / "notify.log")}
    bundles = {}
    for plan, file in PLANS.items():
        bundles[plan] = tmp / f"{plan}.planb"
        build_bundle(ROOT / file, bundles[plan], plan=plan, options=BuildOptions(progress=None))
    ours_port, base_port = _port(), _port()
    ours = _start([str(BIN / "planrt"), "serve", *map(str, bundles.values()), "--port", str(ours_port),
                   "--workers", str(args.workers), "--max-queue", "256", "--state-dir", str(tmp / "state")],
                  ours_port, tmp / "ours.log", env)
    base = _start([sys.executable, str(ROOT / "benchmarks/serve_baseline.py"), "--port", str(base_port)],
                  base_port, tmp / "base.log", env)
    rows = []
    try:
        for plan in PLANS:
            inputs = _inputs(plan)
            body, path = _body(inputs), f"/v2/models/{plan}/infer"
            a, b = _answer(ours_port, plan, body), _answer(base_port, plan, body)
            for k in b:
                np.testing.assert_allclose(a[k], b[k], rtol=1e-4, atol=1e-5, err_msg=f"{plan}.{k}")
            for c in levels:
                for port in (ours_port, base_port):
                    load(port, path, body, c, 1.0)  # warm up (jit compile, tool workers, pools)
                got = {"ours": [], "base": []}
                for _ in range(args.repeat):  # interleaved, so drifting load hits both alike
                    got["base"].append(load(base_port, path, body, c, args.seconds))
                    got["ours"].append(load(ours_port, path, body, c, args.seconds))
                proc = None
                if not args.skip_processes:
                    proc = _stats([per_process(bundles[plan], inputs, tmp, c, args.seconds)])
                rows.append((plan, c, _stats(got["ours"]), _stats(got["base"]), proc))
                print(f"  {plan} c={c} done", file=sys.stderr, flush=True)
    finally:
        for p in (ours, base):
            p.terminate()
            p.wait(60)
    print("| plan | concurrency | planrt serve req/s | p50 / p99 ms | FastAPI + jax.jit req/s | p50 / p99 ms "
          "| planrt run per request req/s | p50 / p99 ms | serve / FastAPI req/s | serve p99 / p50 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for plan, c, o, b, p in rows:
        proc = f"{p[0]:.1f} | {p[1] * 1e3:.0f} / {p[2] * 1e3:.0f}" if p else "- | -"
        print(f"| {plan} | {c} | {o[0]:.0f} | {o[1] * 1e3:.2f} / {o[2] * 1e3:.2f} | {b[0]:.0f} | "
              f"{b[1] * 1e3:.2f} / {b[2] * 1e3:.2f} | {proc} | {o[0] / b[0]:.2f}x | {o[2] / o[1]:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
