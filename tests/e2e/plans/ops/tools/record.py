#!/usr/bin/env python3
"""A side effect: appends one line per call to $OPS_LOG, sleeps its second argument (seconds), and
prints the sum of its first argument with the call's idempotency key."""
import json
import os
import sys
import time

req = json.load(sys.stdin)
with open(os.environ["OPS_LOG"], "a") as f:
    f.write(json.dumps({"key": req["idempotency_key"], "attempt": req.get("attempt")}) + "\n")
time.sleep(float(req["args"][1]))
json.dump({"sum": round(sum(req["args"][0]), 5), "key": req["idempotency_key"]}, sys.stdout)
