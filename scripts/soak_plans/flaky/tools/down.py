#!/usr/bin/env python3
"""A tool whose service is down: logs the attempt to $INVOCATIONS and fails, so its breaker opens."""
import json
import os
import sys

req = json.load(sys.stdin)
with open(os.environ["INVOCATIONS"], "a") as f:
    f.write(json.dumps({"key": req["idempotency_key"], "attempt": req.get("attempt"), "tool": "down"}) + "\n")
sys.exit(5)
