"""Compile time: every example cold (empty module cache) per target, then a warm rebuild.

The warm rebuild redoes everything but IREE (parse, types, merge, schedule, JAX tracing and
StableHLO export) and takes the modules from the content-addressed cache. The goal is warm
<= 5 % of cold.

Usage: .venv/bin/python benchmarks/compile.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLANS = [("defects/defects.plan", None), ("agent/agent.plan", None), ("sensors/sensors.plan", "sensors"),
         ("sensors/sensors.plan", "vib_screen")]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    from planc.compiler.bundle.build import BuildOptions, build_bundle

    rows = []
    per_target: dict[str, list[float]] = defaultdict(list)
    with tempfile.TemporaryDirectory() as d:
        for file, plan in PLANS:
            cold, warm = [], []
            for r in range(args.repeat):
                os.environ["PLANC_CACHE_DIR"] = str(Path(d) / f"cache-{plan}-{r}")
                events = []
                t = time.perf_counter()
                build_bundle(ROOT / "examples" / file, Path(d) / "b.planb", plan=plan,
                             options=BuildOptions(progress=events.append))
                cold.append(time.perf_counter() - t)
                for e in events:
                    if not e.cached and not e.failed:
                        per_target[e.target.value].append(e.seconds)
                t = time.perf_counter()
                build_bundle(ROOT / "examples" / file, Path(d) / "b.planb", plan=plan,
                             options=BuildOptions(progress=None))
                warm.append(time.perf_counter() - t)
            c, w = statistics.median(cold), statistics.median(warm)
            rows.append((plan or Path(file).stem, c, w))
    print(f"\nwhole build per plan, median of {args.repeat} (cold: empty cache; warm: same inputs again)")
    print(f"| {'plan':<12} | {'cold':>8} | {'warm':>8} | {'warm/cold':>9} |")
    print(f"|{'-' * 14}|{'-' * 10}|{'-' * 10}|{'-' * 11}|")
    for name, c, w in rows:
        print(f"| {name:<12} | {c:>7.2f}s | {w:>7.2f}s | {w / c:>8.1%} |")
    print("\none IREE compile of one module, by target (median over every module of every plan, cold)")
    print(f"| {'target':<14} | {'median':>8} | {'modules':>7} |")
    print(f"|{'-' * 16}|{'-' * 10}|{'-' * 9}|")
    for target, ts in sorted(per_target.items()):
        print(f"| {target:<14} | {statistics.median(ts):>7.3f}s | {len(ts):>7} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
