"""Where one small-plan run's microseconds go, by py-spy (a sampling profiler: no tracing overhead).

Runs an example plan from one loaded bundle in a loop for a few seconds under `py-spy record`
(install it with `.venv/bin/pip install py-spy`), then splits the mean run time by the function
the samples were in (own time), the IREE calls being native code inside their Python callers.

Usage: .venv/bin/python benchmarks/profile_run.py [defects|sensors] [--seconds S] [--rate HZ]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time
sys.path.insert(0, {bench!r})
import runtime as bench
from planc.runtime.bundle.loader import load_bundle
from planc.runtime.engine.runner import RunConfig, Runner
ex = getattr(bench, "_" + {plan!r})()
bench._bundle(bench.EXAMPLES / ex.name / (ex.name + ".plan"), {out!r}, plan=ex.plan)
runner = Runner(load_bundle({out!r}), RunConfig())
for _ in range(500):
    runner.run(ex.inputs)
n, t0 = 0, time.perf_counter()
while time.perf_counter() - t0 < {seconds}:
    runner.run(ex.inputs)
    n += 1
print(json.dumps({{"runs": n, "seconds": time.perf_counter() - t0}}))
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("plan", nargs="?", default="sensors", choices=["defects", "sensors"])
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--rate", type=int, default=5000, help="samples per second")
    args = ap.parse_args(argv)
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        print("py-spy is not installed: .venv/bin/pip install py-spy", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as d:
        os.environ.setdefault("PLANC_CACHE_DIR", str(Path(d) / "cache"))
        raw = Path(d) / "raw.txt"
        code = CHILD.format(bench=str(ROOT / "benchmarks"), plan=args.plan, out=str(Path(d) / "p.planb"),
                            seconds=args.seconds)
        proc = subprocess.run([spy, "record", "--nonblocking", "-r", str(args.rate), "-f", "raw", "-o", str(raw), "--",
                               sys.executable, "-c", code], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            return 1
        timing = json.loads(next(ln for ln in proc.stdout.splitlines() if ln.startswith('{"runs"')))
        own: collections.Counter[str] = collections.Counter()
        for line in raw.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            frames = stack.split(";")
            if not any(f.startswith("Runner.run ") for f in frames):
                continue
            own[_short(frames[-1])] += int(count)
    total = sum(own.values())
    # Time on the CPU per run, from the samples (wall time on a shared machine also counts waiting).
    per_run = total / args.rate / timing["runs"]
    wall = timing["seconds"] / timing["runs"]
    print(f"\n{args.plan}: {timing['runs']} runs in {timing['seconds']:.1f} s ({wall * 1e6:.1f} us wall per run); "
          f"{total} py-spy samples inside Runner.run: {per_run * 1e6:.1f} us on the CPU per run, own time by function")
    print(f"| {'function (file)':<62} | {'share':>6} | {'us/run':>7} |")
    print(f"|{'-' * 64}|{'-' * 8}|{'-' * 9}|")
    for name, n in own.most_common(16):
        print(f"| {name[:62]:<62} | {n / total:>5.1%} | {n / total * per_run * 1e6:>7.2f} |")
    rest = total - sum(n for _, n in own.most_common(16))
    print(f"| {'everything else':<62} | {rest / total:>5.1%} | {rest / total * per_run * 1e6:>7.2f} |")
    return 0


def _short(frame: str) -> str:
    """`Engine._compute (runtime/engine/executor.py:231)` -> `Engine._compute (executor.py)`."""
    fn, _, where = frame.partition(" (")
    return f"{fn} ({Path(where.rstrip(')')).name.rpartition(':')[0]})" if where else fn


if __name__ == "__main__":
    sys.exit(main())
