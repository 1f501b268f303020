"""`planrt serve` sent bodies far larger than its model's inputs can need (issue 25, item 7): the
server's peak memory (VmHWM) and /v2/health/live latency while 4 clients at once each send a
60 MB JSON body, declared with Content-Length and sent chunked (no length), against the same
server idle. Before the fix one such body took the server from 53 MB to 1.04 GB (four: 1.78 GB)
and a 50 MB body blocked /v2/health/live for 0.87 s.

Usage: .venv/bin/python benchmarks/serve_big_bodies.py [--mb 60] [--clients 4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from serve import BIN, PLANS, ROOT, _port, _start

PLAN = "sensors"


def vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def send_big(port: int, mb: int, chunked: bool, answers: list[int]) -> None:
    piece = b"[" + b"0.5," * (1 << 18)  # ~1 MB of JSON numbers
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=60)
        head = f"POST /v2/models/{PLAN}/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        head += "Transfer-Encoding: chunked\r\n\r\n" if chunked else f"Content-Length: {mb * len(piece)}\r\n\r\n"
        s.sendall(head.encode())
        for _ in range(mb):
            s.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece)
    except OSError:
        pass  # the server answered 400 and closed while the client was still sending: expected
    try:
        answers.append(int(s.recv(200).split(b" ", 2)[1]))
    except (OSError, IndexError, ValueError):
        answers.append(0)
    finally:
        s.close()


def live_ms(port: int, stop: threading.Event, out: list[float]) -> None:
    while not stop.is_set():
        t = time.perf_counter()
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            s.recv(200)
        out.append((time.perf_counter() - t) * 1e3)
        time.sleep(0.005)


def one(port: int, clients: int, mb: int, chunked: bool | None) -> tuple[list[float], list[int]]:
    stop, lat, answers = threading.Event(), [], []
    probe = threading.Thread(target=live_ms, args=(port, stop, lat))
    probe.start()
    if chunked is None:
        time.sleep(1.0)
    else:
        senders = [threading.Thread(target=send_big, args=(port, mb, chunked, answers)) for _ in range(clients)]
        for t in senders:
            t.start()
        for t in senders:
            t.join()
        time.sleep(0.2)
    stop.set()
    probe.join()
    return lat, answers


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=int, default=60)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    from planc.compiler.bundle.build import BuildOptions, build_bundle

    tmp = Path(tempfile.mkdtemp(prefix="planc-big-bodies-"))
    bundle = tmp / f"{PLAN}.planb"
    build_bundle(ROOT / PLANS[PLAN], bundle, plan=PLAN, options=BuildOptions(progress=None))
    port = _port()
    server = _start([str(BIN / "planrt"), "serve", str(bundle), "--port", str(port), "--state-dir", str(tmp / "s")],
                    port, tmp / "server.log", None)
    rows = []
    try:
        start_mb = vm_hwm_mb(server.pid)
        for _ in range(args.rounds):
            for kind, chunked in (("idle", None), ("Content-Length", False), ("chunked", True)):
                lat, answers = one(port, args.clients, args.mb, chunked)
                rows.append((kind, statistics.median(lat), max(lat), answers, vm_hwm_mb(server.pid)))
    finally:
        server.terminate()
        server.wait(60)
    print(f"\n{args.clients} clients x {args.mb} MB bodies, plan {PLAN}; server VmHWM at start {start_mb:.0f} MB\n")
    print("| round | /v2/health/live median ms | max ms | answers | server VmHWM after, MB |")
    print("|---|---:|---:|---|---:|")
    for kind, med, worst, answers, hwm in rows:
        print(f"| {kind} | {med:.2f} | {worst:.2f} | {','.join(map(str, sorted(answers))) or '-'} | {hwm:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
