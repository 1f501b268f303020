"""`planrt serve` beside slow clients: a steady load of real requests alone, and the same load with
--stalled connections open that send their headers and 5 bytes of body, then nothing (issue 25).

Rounds alternate (alone, stalled, alone, stalled, ...) against one server; each reports the real
requests' requests per second, p50/p99 latency (client side) and error count (any answer but 200,
or a connection error). Stalled connections that the server closes (408 after --body-timeout) are
opened again, so --stalled stay open throughout a stalled round.

Usage: .venv/bin/python benchmarks/serve_slow_clients.py [--stalled 200] [--concurrency 4]
       [--seconds 5] [--repeat 3] [--workers 2] [--body-timeout 30]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from serve import BIN, PLANS, ROOT, _body, _inputs, _port, _read_response, _request, _start

PLAN = "sensors"


async def _real(port: int, req: bytes, stop_at: float, lat: list[float], errors: list[str]) -> None:
    while time.perf_counter() < stop_at:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError as e:
            errors.append(f"connect: {e}")
            await asyncio.sleep(0.01)
            continue
        try:
            while time.perf_counter() < stop_at:
                t = time.perf_counter()
                writer.write(req)
                status, body = await _read_response(reader)
                lat.append(time.perf_counter() - t)
                if status != 200:
                    errors.append(f"{status}: {body[:120]!r}")
        except (OSError, asyncio.IncompleteReadError) as e:
            errors.append(f"connection: {e!r}")
        finally:
            writer.close()


async def _stall(port: int, path: str, stop: asyncio.Event, answers: list[int], opened: list[int]) -> None:
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Content-Length: 100000\r\n\r\n{\"inp").encode()
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        opened[0] += 1
        writer.write(head)
        try:
            read = asyncio.ensure_future(reader.read(200))
            halt = asyncio.ensure_future(stop.wait())
            done, _ = await asyncio.wait({read, halt}, return_when=asyncio.FIRST_COMPLETED)
            if read in done and read.result():
                answers.append(int(read.result().split(b" ", 2)[1]))
            read.cancel()
            halt.cancel()
        finally:
            writer.close()


def one_round(port: int, stalled: int, concurrency: int, seconds: float, body: bytes) -> dict:
    path = f"/v2/models/{PLAN}/infer"
    req = _request(path, body)
    lat: list[float] = []
    errors: list[str] = []
    answers: list[int] = []
    opened = [0]

    async def main() -> float:
        stop = asyncio.Event()
        stallers = [asyncio.ensure_future(_stall(port, path, stop, answers, opened)) for _ in range(stalled)]
        if stalled:
            deadline = time.perf_counter() + 10
            while opened[0] < stalled and time.perf_counter() < deadline:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.2)  # their headers are in; the server waits for their bodies
        t0 = time.perf_counter()
        await asyncio.gather(*[_real(port, req, t0 + seconds, lat, errors) for _ in range(concurrency)])
        elapsed = time.perf_counter() - t0
        stop.set()
        await asyncio.gather(*stallers)
        return elapsed

    elapsed = asyncio.run(main())
    return {"rps": len(lat) / elapsed, "p50": float(np.percentile(lat, 50)) * 1e3,
            "p99": float(np.percentile(lat, 99)) * 1e3, "errors": len(errors), "requests": len(lat),
            "stalled_answers": answers, "sample_error": errors[0] if errors else ""}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stalled", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=4, help="connections of real requests")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--body-timeout", type=float, default=30.0)
    args = ap.parse_args(argv)
    from planc.compiler.bundle.build import BuildOptions, build_bundle

    tmp = Path(tempfile.mkdtemp(prefix="planc-slow-clients-"))
    bundle = tmp / f"{PLAN}.planb"
    build_bundle(ROOT / PLANS[PLAN], bundle, plan=PLAN, options=BuildOptions(progress=None))
    port = _port()
    server = _start([str(BIN / "planrt"), "serve", str(bundle), "--port", str(port), "--workers", str(args.workers),
                     "--body-timeout", str(args.body_timeout), "--state-dir", str(tmp / "state")],
                    port, tmp / "server.log", dict(os.environ))
    body = _body(_inputs(PLAN))
    rounds: dict[str, list[dict]] = {"alone": [], "stalled": []}
    try:
        one_round(port, 0, args.concurrency, 1.0, body)  # warm up
        for _ in range(args.repeat):
            for kind in ("alone", "stalled"):
                r = one_round(port, args.stalled if kind == "stalled" else 0, args.concurrency, args.seconds, body)
                rounds[kind].append(r)
                print(f"  {kind:8s} {r['rps']:7.1f} req/s  p50 {r['p50']:7.2f} ms  p99 {r['p99']:7.2f} ms  "
                      f"errors {r['errors']}/{r['requests']} {r['sample_error']}", file=sys.stderr)
    finally:
        server.terminate()
        server.wait(60)

    def med(kind: str, key: str) -> float:
        return statistics.median(r[key] for r in rounds[kind])

    print(f"\nplan {PLAN}, {args.concurrency} connections of real requests, --workers {args.workers}, "
          f"{args.repeat} interleaved rounds of {args.seconds:g} s (medians); load average "
          f"{os.getloadavg()[0]:.1f}\n")
    print("| rounds | stalled connections | req/s | p50 ms | p99 ms | errors / requests |")
    print("|---|---:|---:|---:|---:|---:|")
    for kind in ("alone", "stalled"):
        errs = sum(r["errors"] for r in rounds[kind])
        total = sum(r["requests"] for r in rounds[kind])
        print(f"| {kind} | {args.stalled if kind == 'stalled' else 0} | {med(kind, 'rps'):.0f} | "
              f"{med(kind, 'p50'):.2f} | {med(kind, 'p99'):.2f} | {errs} / {total} |")
    print(f"\nstalled / alone: p50 {med('stalled', 'p50') / med('alone', 'p50'):.2f}x, "
          f"p99 {med('stalled', 'p99') / med('alone', 'p99'):.2f}x, "
          f"req/s {med('stalled', 'rps') / med('alone', 'rps'):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
