"""What checking a bundle's signature costs at load: `load_bundle(path)` vs `load_bundle(path, trust=...)`.

    python benchmarks/trust.py [BUNDLE.planb ...] [--reps N]

Without bundles, compiles examples/defects and examples/sensors (through the module cache) into a
temp directory. Each bundle is signed with a fresh P-256 key and with a fresh Ed25519 key (copies);
the plain load and the trusted load run interleaved in one process, `--reps` times each; medians,
and the trusted / plain ratio. Also the median time of `planc sign`'s work (sign_bundle).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from planc.compiler.bundle.sign import sign_bundle
from planc.runtime.bundle.loader import load_bundle
from planc.runtime.bundle.trust import Trust

ROOT = Path(__file__).resolve().parents[1]


def _keys(d: Path, name: str, key: object) -> tuple[Path, Path]:
    priv, pub = d / f"{name}.pem", d / f"{name}.pub"
    priv.write_bytes(key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption()))  # type: ignore[attr-defined]
    pub.write_bytes(key.public_key().public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo))  # type: ignore[attr-defined]
    return priv, pub


def _examples(out: Path) -> list[Path]:
    from planc.compiler.bundle.build import BuildOptions, build_bundle

    built = []
    for file, plan in (("examples/defects/defects.plan", "defects"), ("examples/sensors/sensors.plan", "sensors")):
        built.append(build_bundle(ROOT / file, out / f"{plan}.planb", plan=plan,
                                  options=BuildOptions(progress=None)).path)
    return built


def _median_ms(xs: list[float]) -> float:
    return statistics.median(xs) * 1e3


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("bundles", nargs="*", type=Path)
    p.add_argument("--reps", type=int, default=30)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        bundles = args.bundles or _examples(d)
        print("| bundle | size | key | plain load ms | trusted load ms | ratio | sign ms |")
        print("|---|---:|---|---:|---:|---:|---:|")
        for kind, key in (("ecdsa-p256", ec.generate_private_key(ec.SECP256R1())),
                          ("ed25519", ed25519.Ed25519PrivateKey.generate())):
            priv, pub = _keys(d, kind, key)
            trust = Trust.from_paths([pub])
            for b in bundles:
                copy = d / f"{kind}-{b.name}"
                shutil.copyfile(b, copy)
                signs = []
                for _ in range(max(3, args.reps // 5)):
                    t0 = time.perf_counter()
                    sign_bundle(copy, priv)
                    signs.append(time.perf_counter() - t0)
                plain, trusted = [], []
                for rep in range(args.reps):  # interleaved, alternating which goes first
                    for which in ((plain, None), (trusted, trust))[:: 1 if rep % 2 else -1]:
                        t0 = time.perf_counter()
                        load_bundle(copy, trust=which[1])
                        which[0].append(time.perf_counter() - t0)
                pm, tm = _median_ms(plain), _median_ms(trusted)
                print(f"| {b.stem} | {copy.stat().st_size / 1024:.0f} KiB | {kind} | {pm:.2f} | {tm:.2f} | "
                      f"{tm / pm:.2f}x | {_median_ms(signs):.1f} |")


if __name__ == "__main__":
    main()
