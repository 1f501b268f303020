"""Python tools for the runtime tests (called by the tool worker with JSON arguments)."""

import os
import sys
import time

from helper import scale  # a sibling module: the tool's folder is importable

CALLS = {"n": 0}


def embed(row, factor, *, idempotency_key=None):
    """Returns [[v * factor for v in row]] as nested lists."""
    return [[scale(v, factor) for v in row]]


def count(*, idempotency_key=None):
    """How many times this module's functions ran in this worker (the module is cached)."""
    CALLS["n"] += 1
    return {"n": CALLS["n"], "pid": os.getpid(), "key": idempotency_key}


def noisy(x, *, idempotency_key=None):
    print("printing to stdout must not break the protocol")
    sys.stdout.flush()
    return x


def boom(*, idempotency_key=None):
    raise ValueError("the tool broke on purpose")


def sleepy(seconds, pidfile, *, idempotency_key=None):
    with open(pidfile, "w") as f:
        f.write(str(os.getpid()))
    time.sleep(seconds)
    return "woke up"


def not_json(*, idempotency_key=None):
    return {1, 2, 3}


def crash(*, idempotency_key=None):
    print("about to crash", file=sys.stderr)
    os._exit(9)
