"""The scheduling tests' random and published graphs live beside the benchmarks (benchmarks/random_dags.py,
benchmarks/paper_dags.py), which are no part of the package: that folder goes last on the path."""

import sys
from pathlib import Path

_BENCHMARKS = str(Path(__file__).resolve().parents[3] / "benchmarks")
if _BENCHMARKS not in sys.path:
    sys.path.append(_BENCHMARKS)
