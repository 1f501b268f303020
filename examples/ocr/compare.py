"""Runs the OCR bundle on synthetic images and compares what it reads with RapidOCR's own pipeline
(ONNX Runtime), image by image, timing both interleaved.

    python examples/ocr/compare.py --images 20 [--bundle ocr.planb]   # builds for this host if no bundle
    python examples/ocr/compare.py --images 20 --candidates auto       # with measured candidate builds (issue 24)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import setup_models
import synth


@dataclass(frozen=True)
class Row:
    written: list[str]
    planc: list[str]
    rapidocr: list[str]
    planc_s: float
    rapidocr_s: float
    tasks: dict[str, float] | None = None  # planc's seconds per task (the runtime's task_seconds)

    @property
    def same(self) -> bool:
        return self.planc == self.rapidocr


def host_target() -> str:
    from planc.runtime.host.detect import detect

    features = detect(cuda=False).features
    if "avx512f" in features:
        return "x86_64-avx512"
    return "x86_64-avx2" if "avx2" in features else "aarch64-neon"


def build(out: Path, targets: tuple[str, ...] | None = None, candidates: str = "none") -> Path:
    """Links the wheel's models, compiles ocr.plan (for this host unless `targets`) to `out`."""
    from planc.compiler.bundle.build import BuildOptions, build_bundle

    setup_models.link_models()
    res = build_bundle(HERE / "ocr.plan", out, options=BuildOptions(progress=None, targets=targets or (host_target(),),
                                                                   candidates=candidates))
    assert res.path is not None
    return res.path


def compare(bundle: Path, n: int, seed: int = 2023) -> list[Row]:
    from planc.runtime import load

    plan = load(bundle)
    rows = []
    for image, written in synth.images(n, seed):
        t0 = time.perf_counter()
        result = plan.run(image=image.astype(np.float32))
        t1 = time.perf_counter()
        reference = synth.rapidocr_read(image)
        t2 = time.perf_counter()
        if result.status.value != "completed":
            raise RuntimeError(f"the OCR plan ended {result.status.value}: {result.error}")
        read = [line["text"] for line in result.outputs["text"].value]
        rows.append(Row(written, read, reference, t1 - t0, t2 - t1, dict(result.task_seconds)))
    return rows


def report(rows: list[Row]) -> str:
    lines = [f"{'#':>3}  {'planc reads':<36} {'RapidOCR reads':<36} same"]
    for i, r in enumerate(rows):
        lines.append(f"{i:>3}  {' | '.join(r.planc):<36} {' | '.join(r.rapidocr):<36} {'yes' if r.same else 'NO'}")
    same = sum(r.same for r in rows)
    pm = statistics.median(r.planc_s for r in rows[1:] or rows)
    rm = statistics.median(r.rapidocr_s for r in rows[1:] or rows)
    lines.append(f"same strings on {same}/{len(rows)} images; median per image (first left out): "
                 f"planc {pm * 1e3:.0f} ms, RapidOCR {rm * 1e3:.0f} ms, ratio {pm / rm:.2f}")
    timed = [r.tasks for r in rows[1:] or rows if r.tasks]
    if timed:
        med = {t: statistics.median(x.get(t, 0.0) for x in timed) for t in timed[0]}
        top = sorted(med.items(), key=lambda kv: -kv[1])
        lines.append("planc median seconds per task: " + ", ".join(f"{t} {s * 1e3:.0f} ms" for t, s in top))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=20)
    p.add_argument("--seed", type=int, default=2023)
    p.add_argument("--bundle", type=Path, default=None)
    p.add_argument("--out", type=Path, default=Path(".planc-demo") / "ocr.planb")
    p.add_argument("--candidates", default="none", help="candidate builds (planc compile --candidates)")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    bundle = args.bundle or build(args.out, candidates=args.candidates)
    if args.bundle is None:
        print(f"built {bundle} (--candidates {args.candidates}) in {time.perf_counter() - t0:.1f} s", flush=True)
    rows = compare(bundle, args.images, args.seed)
    print(report(rows))
    return 0 if all(r.same for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
