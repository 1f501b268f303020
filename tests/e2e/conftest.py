"""Fixtures of the end-to-end tests: example bundles built once per session."""

from __future__ import annotations

import os

import pytest
from e2e_support import EXAMPLES, PLANS


@pytest.fixture(scope="session")
def bundles(tmp_path_factory) -> dict[str, object]:
    """Every example plan compiled to a bundle (through the module cache under tmp)."""
    from planc.compiler.bundle.build import BuildOptions, build_bundle

    os.environ.setdefault("PLANC_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    out = tmp_path_factory.mktemp("bundles")
    built = {}
    for file, plan in PLANS:
        built[plan] = build_bundle(EXAMPLES / file, out / f"{plan}.planb", plan=plan,
                                   options=BuildOptions(progress=None))
    return built


@pytest.fixture
def tool_env(tmp_path) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PLANC_NOTIFY_LOG": str(tmp_path / "notify.log"),
            "PLANC_OUTBOX": str(tmp_path / "outbox.jsonl")}
