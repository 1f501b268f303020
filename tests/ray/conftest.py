"""Fixtures of the Ray tests: one loopback cluster per session (see ray_helpers) and the bundles they run."""

from __future__ import annotations

import os

import pytest
from ray_helpers import AVX2, AVX512, CRASH_PLAN, PLANS, LocalCluster


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory):
    pytest.importorskip("ray")
    cluster = LocalCluster(tmp_path_factory.mktemp("ray-cluster"))
    try:
        cluster.start("n0", AVX2, head=True)
        cluster.start("n1", AVX512)
        yield cluster
    finally:
        left = cluster.stop()
    assert not left, f"processes left after planrt node stop: {left}"


@pytest.fixture(scope="session")
def ray_bundles(tmp_path_factory) -> dict[str, object]:
    """fanout (3 groups placed over n0/n1 by its schedule), crash (AVX2 + AVX-512 variants),
    crash512 (AVX-512 only) and neon (aarch64 only: no node here can run it)."""
    from planc.compiler.bundle.build import BuildOptions, build_bundle

    # One module cache for every xdist worker of this session (entries are written atomically).
    base = tmp_path_factory.getbasetemp()
    session = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    os.environ.setdefault("PLANC_CACHE_DIR", str(session / "planc-ray-cache"))
    out = tmp_path_factory.mktemp("ray-bundles")
    fan = PLANS / "fanout" / "fanout.plan"
    x86 = ("x86_64-avx2", "x86_64-avx512")
    specs = {
        "fanout": (fan, BuildOptions(deploy=str(PLANS / "fanout" / "cluster.toml"), max_group=1, progress=None)),
        "crash": (CRASH_PLAN, BuildOptions(targets=x86, progress=None)),
        "crash512": (CRASH_PLAN, BuildOptions(targets=("x86_64-avx512",), progress=None)),
        "neon": (fan, BuildOptions(targets=("aarch64-neon",), progress=None)),
    }
    return {name: build_bundle(plan, out / f"{name}.planb", options=opts) for name, (plan, opts) in specs.items()}


