#!/usr/bin/env python3
"""Exec tool that fails at random but reproducibly: args [seed, rate]; attempt from the request."""

import json
import random
import sys

request = json.load(sys.stdin)
seed, rate = request["args"]
attempt = request["attempt"]
if random.Random(f"{seed}:{attempt}").random() < rate:
    print(f"flaky: seed {seed} attempt {attempt} failed", file=sys.stderr)
    sys.exit(1)
json.dump({"seed": seed, "attempt": attempt, "key": request["idempotency_key"]}, sys.stdout)
