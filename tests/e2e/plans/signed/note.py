#!/usr/bin/env python3
"""Appends its call to $NOTE_LOG (a side effect the tests can see) and echoes its argument."""
import json
import os
import sys

req = json.load(sys.stdin)
with open(os.environ["NOTE_LOG"], "a") as f:
    f.write(json.dumps(req["args"]) + "\n")
json.dump({"noted": req["args"][0]}, sys.stdout)
