#!/usr/bin/env python3
"""Exec tool that never answers: spawns a child, writes both pids to args[0], sleeps forever.

With args[1] == "ignore-term", leader and child ignore SIGTERM (only SIGKILL stops them).
"""

import json
import os
import signal
import subprocess
import sys
import time

request = json.load(sys.stdin)
pidfile, mode = request["args"]
code = "import signal, time\n"
if mode == "ignore-term":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    code += "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
child = subprocess.Popen([sys.executable, "-c", code + "time.sleep(1000)"])
with open(pidfile + ".tmp", "w") as f:
    json.dump({"leader": os.getpid(), "child": child.pid}, f)
os.rename(pidfile + ".tmp", pidfile)
while True:
    time.sleep(1000)
