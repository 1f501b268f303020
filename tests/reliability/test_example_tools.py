"""The example tools honour planrt's idempotency key: a call redelivered after a crash happens once."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_notify_logs_each_key_once(tmp_path: Path) -> None:
    # Found by scripts/soak.py: kill -9 while notify.sh ran, then resume, logged the alert twice.
    log = tmp_path / "notify.log"
    for key in ("r:alert", "r:alert", "other:alert", None):
        req = {"args": [[0.1], 0.9], "attempt": 1, **({"idempotency_key": key} if key else {})}
        out = subprocess.run(["sh", str(ROOT / "examples/defects/tools/notify.sh")], input=json.dumps(req),
                             capture_output=True, text=True, check=True, env={"PLANC_NOTIFY_LOG": str(log),
                                                                              "PATH": "/usr/bin:/bin"})
        assert json.loads(out.stdout) == {"sent": True}
    keys = [json.loads(line).get("idempotency_key") for line in log.read_text().splitlines()]
    assert keys == ["r:alert", "other:alert", None]
