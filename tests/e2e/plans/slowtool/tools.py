"""A slow side effect: appends 'start PID' and, after `seconds`, 'done PID' to $SLOWTOOL_LOG."""

import os
import time


def wait(seconds):
    with open(os.environ["SLOWTOOL_LOG"], "a") as f:
        f.write(f"start {os.getpid()}\n")
    time.sleep(float(seconds))
    with open(os.environ["SLOWTOOL_LOG"], "a") as f:
        f.write(f"done {os.getpid()}\n")
    return {"waited": float(seconds)}
