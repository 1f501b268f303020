"""Run the server on uvicorn until SIGTERM or SIGINT, then drain: in-flight requests finish, exit 0."""

from __future__ import annotations

import logging
import math
import os
import signal
import socket
import threading
from collections.abc import Generator
from contextlib import contextmanager
from pathlib import Path

from planc.runtime.serve.server import InferenceServer, ServeOptions

__all__ = ["serve"]

log = logging.getLogger(__name__)


def serve(bundles: list[Path], options: ServeOptions) -> int:
    """Load `bundles`, serve them until a stop signal, drain, and return 0 (1 when the drain deadline
    passed with runs still going: they are left, and keyed runs finish on the next start)."""
    import uvicorn
    from planc.runtime.serve.app import build_app

    server = InferenceServer(bundles, options)  # a bad or untrusted bundle is said first
    try:
        sock = listen(options.host, options.port)  # OSError before any "serving" line when the port is taken
        config = uvicorn.Config(build_app(server), log_level="warning", access_log=False, lifespan="off",
                                timeout_keep_alive=30, timeout_graceful_shutdown=max(1, math.ceil(options.drain_timeout)),
                                log_config=None)
        http = _Uvicorn(config, server)
        for name in server.repo.names():
            plan = server.repo.get(name).plan
            log.warning("serving model '%s' version %s (%s)", name, plan.sha256[:12],
                        ", ".join(sorted(set(plan.variants.values()))) or "no modules")
        log.warning("listening on http://%s:%d%s", options.host, sock.getsockname()[1],
                    "" if options.tokens is not None else " (no authentication)")
        http.run([sock])
        running, waiting = server.workers.counts()
        if running or waiting:
            log.warning("drain deadline (--drain-timeout %gs) passed with %d run(s) still going; exiting",
                        options.drain_timeout, running + waiting)
            server.close(wait=False)
            logging.shutdown()
            os._exit(1)  # the pool's threads would hold the interpreter's exit
        return 0
    finally:
        server.close()


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (IPv6 when host is one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on such sockets' connections, and
    # without it Nagle's algorithm and delayed ACKs add ~40 ms to every keep-alive response.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(2048)
    except OSError as e:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    sock.set_inheritable(True)
    return sock


class _Uvicorn:
    """uvicorn's Server, with stop signals that drain and return instead of re-raising the signal
    (uvicorn re-raises it after shutdown, which makes the exit status 143 rather than 0)."""

    def __init__(self, config: object, server: InferenceServer) -> None:
        import uvicorn

        class Server(uvicorn.Server):
            @contextmanager
            def capture_signals(inner) -> Generator[None, None, None]:
                if threading.current_thread() is not threading.main_thread():
                    yield
                    return
                old = {s: signal.signal(s, lambda sig, frame: stop(sig)) for s in (signal.SIGTERM, signal.SIGINT)}
                try:
                    yield
                finally:
                    for s, h in old.items():
                        signal.signal(s, h)

        def stop(sig: int) -> None:
            if server.draining and sig == signal.SIGINT:
                self.http.force_exit = True  # a second Ctrl-C: stop waiting
            server.draining = True
            log.warning("%s: draining %d request(s), then exiting", signal.Signals(sig).name, server.accepted)
            self.http.should_exit = True

        self.http = Server(config)  # type: ignore[arg-type]

    def run(self, sockets: list[socket.socket]) -> None:
        self.http.run(sockets=sockets)
