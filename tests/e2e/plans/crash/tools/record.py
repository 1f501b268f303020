#!/usr/bin/env python3
"""A side effect with an idempotency key: logs every invocation to $INVOCATIONS, then (after a
pause, so a crash can land mid-call) appends one line per logical call to $OUTBOX, skipping a
key it has already recorded. Prints the sum of its first argument and its label."""
import json
import os
import sys
import time

req = json.load(sys.stdin)
key = req["idempotency_key"]
with open(os.environ["INVOCATIONS"], "a") as f:
    f.write(json.dumps({"key": key, "attempt": req.get("attempt")}) + "\n")
time.sleep(float(os.environ.get("RECORD_SLEEP", "0.1")))
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
values = req["args"][0]
total = sum(sum(row) for row in values)
json.dump({"label": req["args"][1], "sum": round(total, 4)}, sys.stdout)
