"""Runs inside the emulated CPU: the host planrt sees, one real `planrt run`, then timed runs.

    probe.py BUNDLE OUT [--repeat N] [-i NAME=FILE.npy ...]

Writes OUT/probe.json ({"host": ..., "rc": ..., "run_seconds": [...]}) and, through `planrt
run --output-dir OUT/outputs`, the outputs and summary.json. Imports only what planrt may
import (stdlib, numpy, iree.runtime, planc.runtime). Exits with planrt's status.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from planc.runtime import cli
from planc.runtime.bundle.loader import load_bundle
from planc.runtime.engine.runner import RunConfig, Runner
from planc.runtime.host.detect import detect


def _timed_runs(bundle: str, inputs: list[str], repeat: int) -> list[float]:
    """Seconds per `Runner.run` (qemu's code cache is already warm from the planrt run before)."""
    arrays = {n: np.load(f) for n, _, f in (spec.partition("=") for spec in inputs)}
    runner = Runner(load_bundle(bundle), RunConfig())
    try:
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            runner.run(arrays)
            times.append(time.perf_counter() - t)
        return times
    finally:
        runner.close()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle")
    ap.add_argument("out", type=Path)
    ap.add_argument("--repeat", type=int, default=0)
    ap.add_argument("-i", dest="inputs", action="append", default=[])
    args = ap.parse_args()
    host = detect()
    report: dict = {"host": {"arch": host.arch, "features": sorted(host.features), "source": host.source,
                             "cuda": len(host.cuda)}}
    argv = ["run", args.bundle, "--no-journal", "--auto-approve", "--output-dir", str(args.out / "outputs")]
    for spec in args.inputs:
        argv += ["-i", spec]
    report["rc"] = rc = cli.main(argv)
    report["run_seconds"] = _timed_runs(args.bundle, args.inputs, args.repeat) if rc == 0 and args.repeat else []
    (args.out / "probe.json").write_text(json.dumps(report, indent=2))
    return rc


if __name__ == "__main__":
    sys.exit(main())
