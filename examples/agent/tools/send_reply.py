#!/usr/bin/env python3
"""Sends a reply: reads {"args": [...], "idempotency_key": ...} on stdin, writes JSON on stdout.

Appends one line per logical call to $PLANC_OUTBOX (default outbox.jsonl),
skipping a key it has already seen, so a retried delivery is sent once.
"""
import json
import os
import sys

request = json.load(sys.stdin)
outbox = os.environ.get("PLANC_OUTBOX", "outbox.jsonl")
key = request.get("idempotency_key")
seen = set()
if os.path.exists(outbox):
    with open(outbox) as f:
        seen = {json.loads(line).get("key") for line in f if line.strip()}
if key not in seen:
    with open(outbox, "a") as f:
        f.write(json.dumps({"key": key, "to": request["args"][2]}) + "\n")
json.dump({"status": "sent", "key": key}, sys.stdout)
