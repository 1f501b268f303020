"""scripts/emulation_setup.py: sources and apt options (pure), the cache, and the skip when offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import emulation_setup as setup
import pytest
from emu_helpers import ROOT
from emulation_sources import AptSource, codename, debian_sources, parse_deb822, parse_one_line, sources_text

KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"

DEB822 = f"""Types: deb
# a comment
URIs: http://mirror.example/debian
Suites: trixie trixie-updates
Components: main contrib
Signed-By: {KEYRING}

Types: deb deb-src
URIs: http://mirror.example/debian-security
Suites: trixie-security
Components: main

Types: deb
URIs: https://vendor.example/node
Suites: nodistro
Components: main
Architectures: amd64
Signed-By: /usr/share/keyrings/vendor.gpg

Types: deb
Enabled: no
URIs: http://mirror.example/debian
Suites: sid
"""

ONE_LINE = f"""deb [arch=amd64 signed-by={KEYRING}] http://mirror.example/debian bookworm main
deb http://mirror.example/debian-security bookworm-security main  # security
deb-src http://mirror.example/debian bookworm main
deb https://vendor.example/apt cloud-sdk main
"""


def test_deb822_keeps_debian_suites_only():
    assert parse_deb822(DEB822) == [
        AptSource("http://mirror.example/debian", "trixie", KEYRING),
        AptSource("http://mirror.example/debian", "trixie-updates", KEYRING),
        AptSource("http://mirror.example/debian-security", "trixie-security", None),
    ]


def test_one_line_keeps_debian_suites_only():
    assert parse_one_line(ONE_LINE) == [
        AptSource("http://mirror.example/debian", "bookworm", KEYRING),
        AptSource("http://mirror.example/debian-security", "bookworm-security", None),
    ]


def test_arm64_sources_text_and_codename():
    sources = parse_one_line(ONE_LINE)
    assert codename(sources) == "bookworm" and codename(parse_deb822(DEB822)) == "trixie"
    assert sources_text(sources, arch="arm64") == (
        f"deb [arch=arm64 signed-by={KEYRING}] http://mirror.example/debian bookworm main\n"
        "deb [arch=arm64] http://mirror.example/debian-security bookworm-security main\n")


def test_this_machines_sources_are_found(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(DEB822)
    (tmp_path / "sources.list.d" / "vendor.list").write_text(ONE_LINE)
    found = debian_sources(tmp_path)
    assert [s.suite for s in found] == ["trixie", "trixie-updates", "trixie-security", "bookworm",
                                        "bookworm-security"]
    assert debian_sources(tmp_path / "missing") == []


def test_apt_options_keep_the_system_apt_untouched(tmp_path):
    opts = setup.apt_options(tmp_path)
    assert "-oAPT::Architecture=arm64" in opts and "-oAPT::Architectures=arm64" in opts
    dirs = [o.split("=", 1)[1] for o in opts if o.startswith("-oDir::")]
    assert len(dirs) == 5 and all(d.startswith(str(tmp_path)) for d in dirs)


def test_cache_key_follows_the_versions():
    pins = {"iree-base-runtime": "3.13.0", "numpy": "2.4.6", "ml_dtypes": "0.6.0"}
    key = setup.cache_key("bookworm", pins)
    assert key.startswith("bookworm-") and key == setup.cache_key("bookworm", dict(pins))
    assert key != setup.cache_key("bookworm", {**pins, "numpy": "2.4.7"}) != setup.cache_key("trixie", pins)
    assert setup.default_cache_dir({"PLANC_EMULATION_CACHE": "/x"}).as_posix() == "/x"
    assert setup.default_cache_dir({"XDG_CACHE_HOME": "/c"}).as_posix() == "/c/planc-emulation"


@pytest.mark.emulation
def test_setup_is_cached_and_reusable(emulation, record_property):
    again = setup.ensure()
    assert again.cached and again.root == emulation.root and again.packages == emulation.packages
    assert again.wheels == setup.wheel_pins()
    ready = json.loads((setup.Path(emulation.root) / "ready.json").read_text())
    assert ready["python"] == emulation.python and os.access(emulation.python, os.X_OK)
    tools = setup.Path(emulation.site) / "iree" / "_runtime_libs"
    assert os.access(tools / "iree-run-module", os.X_OK)  # exec bits restored after unzipping
    record_property("emulation-setup", {"first_call_s": emulation.seconds, "cached": emulation.cached,
                                        "built_s": emulation.built_seconds, "cached_call_s": again.seconds})


@pytest.mark.emulation
def test_unreachable_registries_are_a_skip_with_a_reason(emulation, tmp_path):
    # A fresh cache and a proxy nobody listens on: the script says why and exits 3 (the skip).
    dead = "http://127.0.0.1:9"
    env = {**os.environ, "http_proxy": dead, "https_proxy": dead, "HTTP_PROXY": dead, "HTTPS_PROXY": dead}
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "emulation_setup.py"), "--cache-dir",
                           str(tmp_path)], capture_output=True, text=True, env=env, timeout=300, check=False)
    assert proc.returncode == setup.EXIT_UNREACHABLE, proc.stderr
    assert "package registries unreachable" in proc.stderr and "Could not connect" in proc.stderr
