"""Where a constant should stay inline: one module `y = x @ W + b` with W of a given size inline vs a
named parameter from a mapped archive, per size: load (VmModule + VmContext, parameters included) plus
the first call, and the median steady call. In one process, interleaved, medians.

Usage: .venv/bin/python benchmarks/param_threshold.py [--repeat N]
"""

from __future__ import annotations

import argparse
import mmap
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SIZES = (64, 256, 1024, 4096, 16384, 65536, 262144)  # bytes of W (f32, 1 x n matrix-vector: n x 16)


def _text(n: int, w: np.ndarray) -> str:
    hexw = w.astype("<f4").tobytes().hex().upper()
    return f"""module @m {{
  func.func @main(%x: tensor<1x{n}xf32>) -> tensor<1x16xf32> {{
    %w = stablehlo.constant dense<"0x{hexw}"> : tensor<{n}x16xf32>
    %0 = stablehlo.dot_general %x, %w, contracting_dims = [1] x [0] : (tensor<1x{n}xf32>, tensor<{n}x16xf32>) -> tensor<1x16xf32>
    %1 = stablehlo.tanh %0 : tensor<1x16xf32>
    return %1 : tensor<1x16xf32>
  }}
}}
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args(argv)
    from planc.compiler.codegen.iree import compile_module
    from planc.compiler.codegen.params import externalize, write_archive
    from planc.compiler.codegen.targets import Target
    from planc.runtime.engine.modules import Device, LoadedModule
    from planc.runtime.engine.params import Parameters

    target = Target.parse("x86_64-avx2")
    dev = Device("local-sync")
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for nbytes in SIZES:
            n = nbytes // 64
            w = np.random.default_rng(n).standard_normal((n, 16)).astype(np.float32)
            text = _text(n, w)
            ext = externalize(text, min_bytes=1)
            inline = compile_module(text, target)
            param = compile_module(ext.mlir, target)
            arc = Path(d) / f"{n}.irpa"
            arc.write_bytes(write_archive(ext.params))
            with open(arc, "rb") as f:
                mapped = memoryview(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ))
            params = Parameters(mapped, "planc")
            x = np.ones((1, n), np.float32)
            t = {"inline": [], "param": []}
            s = {"inline": [], "param": []}
            for _ in range(args.repeat):
                for form, vmfb, p in (("inline", inline, None), ("param", param, params)):
                    start = time.perf_counter()
                    mod = LoadedModule("m", dev, vmfb, ["f32"], ["f32"], p)
                    views = [dev.to_device(x, "f32")]
                    mod.invoke(views)
                    t[form].append(time.perf_counter() - start)
                    calls = []
                    for _ in range(50):
                        c = time.perf_counter()
                        mod.invoke(views)
                        calls.append(time.perf_counter() - c)
                    s[form].append(statistics.median(calls))
            rows.append((nbytes, len(inline), len(param), *(statistics.median(t[f]) for f in ("inline", "param")),
                         *(statistics.median(s[f]) for f in ("inline", "param"))))
    print("| W bytes | vmfb inline | vmfb param | load + first call inline | param | ratio | "
          "steady call inline | param | ratio |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for nb, vi, vp, li, lp, si, sp in rows:
        print(f"| {nb} | {vi} | {vp} | {li * 1e6:.0f} us | {lp * 1e6:.0f} us | {lp / li:.2f}x | "
              f"{si * 1e6:.1f} us | {sp * 1e6:.1f} us | {sp / si:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
