"""Helpers of the server tests: start `planrt serve` as a real process on a free port, stop it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

PLANRT = Path(sys.executable).with_name("planrt")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """`planrt serve BUNDLES... --port P` in its own process; `url` once it answers ready."""

    def __init__(self, bundles: list[Path], state_dir: Path, *args: str, env: dict[str, str] | None = None):
        self.port = free_port()
        self.url = f"127.0.0.1:{self.port}"
        self.log = state_dir.with_suffix(".log")
        state_dir.mkdir(parents=True, exist_ok=True)
        cmd = [str(PLANRT), "serve", *map(str, bundles), "--port", str(self.port), "--state-dir", str(state_dir),
               *args]
        self._out = open(self.log, "ab")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(cmd, stdout=self._out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        deadline = time.monotonic() + 120
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"planrt serve exited with {self.proc.returncode}: {self.log.read_text()}")
            try:
                if get(self.url, "/v2/health/ready")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"planrt serve did not get ready: {self.log.read_text()}")
            time.sleep(0.1)

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM, then wait for the exit status."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self._out.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        self._out.close()


def request(url: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
            method: str | None = None, timeout: float = 60) -> tuple[int, bytes, dict[str, str]]:
    """(status, body, headers) of one HTTP request; an error status is returned, not raised."""
    req = urllib.request.Request(f"http://{url}{path}", data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def get(url: str, path: str) -> tuple[int, bytes, dict[str, str]]:
    return request(url, path, timeout=5)


def post_json(url: str, path: str, doc: object, headers: dict[str, str] | None = None,
              timeout: float = 60) -> tuple[int, dict, dict[str, str]]:
    status, body, h = request(url, path, json.dumps(doc).encode(),
                              {"Content-Type": "application/json", **(headers or {})}, timeout=timeout)
    return status, json.loads(body) if body else {}, h
