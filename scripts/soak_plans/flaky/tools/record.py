#!/usr/bin/env python3
"""A flaky side effect with an idempotency key: logs every attempt to $INVOCATIONS; the first attempt of
each call fails; a later one appends the call to $OUTBOX once (skipping a key already there)."""
import json
import os
import sys
import time

req = json.load(sys.stdin)
key = req["idempotency_key"]
with open(os.environ["INVOCATIONS"], "a") as f:
    f.write(json.dumps({"key": key, "attempt": req.get("attempt"), "tool": "record"}) + "\n")
time.sleep(float(os.environ.get("RECORD_SLEEP", "0.05")))
if req.get("attempt") in (None, 0, 1):
    print("transient failure", file=sys.stderr)
    sys.exit(3)
outbox = os.environ["OUTBOX"]
seen = set()
if os.path.exists(outbox):
    with open(outbox) as f:
        seen = {json.loads(line)["key"] for line in f if line.strip()}
if key not in seen:
    with open(outbox, "a") as f:
        f.write(json.dumps({"key": key}) + "\n")
        f.flush()
        os.fsync(f.fileno())
json.dump({"label": req["args"][1], "value": req["args"][0]}, sys.stdout)
