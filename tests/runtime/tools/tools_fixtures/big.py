#!/usr/bin/env python3
"""Exec tool that prints args[0] bytes of (valid) JSON: a string of that length."""

import json
import sys

n = json.load(sys.stdin)["args"][0]
sys.stdout.write('"' + "x" * n + '"')
