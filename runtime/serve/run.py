"""Run the server on uvicorn until SIGTERM or SIGINT, then drain: in-flight requests finish, exit 0."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Generator
from contextlib import contextmanager
from pathlib import Path

from planc.runtime.serve.server import InferenceServer, ServeOptions

__all__ = ["serve"]

log = logging.getLogger(__name__)


def serve(bundles: list[Path], options: ServeOptions) -> int:
    """Load `bundles`, serve them until a stop signal, drain, and return 0."""
    import uvicorn
    from planc.runtime.serve.app import build_app

    server = InferenceServer(bundles, options)
    try:
        config = uvicorn.Config(build_app(server), host=options.host, port=options.port, log_level="warning",
                                access_log=False, lifespan="off", timeout_keep_alive=30)
        http = _Uvicorn(config, server)
        for name in server.repo.names():
            plan = server.repo.get(name).plan
            log.warning("serving model '%s' version %s (%s)", name, plan.sha256[:12],
                        ", ".join(sorted(set(plan.variants.values()))) or "no modules")
        http.run()
        return 0
    finally:
        server.close()


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

    def run(self) -> None:
        self.http.run()
