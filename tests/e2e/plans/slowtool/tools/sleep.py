#!/usr/bin/env python3
"""An exec tool that takes its time: 'start PID' and, after its first argument in seconds, 'done PID'
appended to $SLOWTOOL_LOG."""
import json
import os
import sys
import time

req = json.load(sys.stdin)
with open(os.environ["SLOWTOOL_LOG"], "a") as f:
    f.write(f"start {os.getpid()}\n")
time.sleep(float(req["args"][0]))
with open(os.environ["SLOWTOOL_LOG"], "a") as f:
    f.write(f"done {os.getpid()}\n")
json.dump({"waited": float(req["args"][0])}, sys.stdout)
