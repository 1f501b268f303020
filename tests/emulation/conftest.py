"""Fixtures for the emulation tier: the cached qemu set-up, the example bundles and their JAX references."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from emu_helpers import ROOT, Example, build_examples, overlay

sys.path.insert(0, str(ROOT / "scripts"))
import emulation_setup


@pytest.fixture(scope="session")
def emulation() -> emulation_setup.Emulation:
    """The set-up of scripts/emulation_setup.py (built on first use, then cached on this machine).

    Skips, saying why, only when the package registries cannot be reached or this machine
    cannot host qemu-user at all; any other set-up failure fails the tests that need it."""
    try:
        return emulation_setup.ensure()
    except emulation_setup.Unreachable as e:
        pytest.skip(f"emulation tier NOT RUN: package registries unreachable: {_brief(e)}")
    except emulation_setup.Unsupported as e:
        pytest.skip(f"emulation tier NOT RUN: {e}")
    except emulation_setup.SetupError as e:
        pytest.fail(f"emulation set-up failed: {e}", pytrace=False)


def _brief(e: Exception) -> str:
    """The first line of a set-up error and the line that says what failed to connect."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    cause = next((line for line in lines[1:] if emulation_setup.network_trouble(line)), "")
    return " / ".join(filter(None, [lines[0] if lines else "", cause]))


@pytest.fixture(scope="session")
def examples(tmp_path_factory) -> dict[str, Example]:
    """Every example plan built for the CPU targets, with inputs and JAX reference outputs."""
    base = tmp_path_factory.getbasetemp()  # shared by the xdist workers of one session: compile once
    os.environ.setdefault("PLANC_CACHE_DIR", str((base.parent if "PYTEST_XDIST_WORKER" in os.environ else base)
                                                 / "planc-cache"))
    return build_examples(tmp_path_factory.mktemp("emulation-bundles"))


@pytest.fixture(scope="session")
def aarch64(emulation, tmp_path_factory) -> tuple[list[str], dict[str, str]]:
    """The command prefix and environment that run a Python file as aarch64 code with planc.runtime."""
    site = overlay(tmp_path_factory.mktemp("aarch64-overlay"))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(site), "HOME": str(Path.home())}
    return [emulation.python], env


@pytest.fixture(scope="session")
def haswell(emulation) -> tuple[list[str], dict[str, str]]:
    """The command prefix and environment that run a Python file on an emulated AVX2-only Haswell."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(Path.home())}
    return [emulation.qemu_x86_64, "-cpu", "Haswell", sys.executable], env
