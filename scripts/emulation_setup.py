"""Scripted, cached set-up of the emulated targets: qemu-user-static, an arm64 Python sysroot, aarch64 wheels.

    python scripts/emulation_setup.py [--cache-dir DIR] [--json]

Gives what the `emulation` test tier needs to run planrt on CPUs this machine is not:
`qemu-x86_64-static -cpu Haswell` (an AVX2-only x86-64) and `qemu-aarch64-static` with an
arm64 Debian Python (from this machine's own Debian sources, arm64 lists kept in the cache,
dpkg's architectures untouched) and the aarch64 wheels of iree-base-runtime, numpy and
ml_dtypes at the versions installed here. Everything lands under
`~/.cache/planc-emulation/<key>` (key: Debian suite, wheel pins, layout), built once under a
lock and reused; a second call returns in milliseconds.

Exit status: 0 ready (prints the paths, `--json` as JSON), 3 the package registries cannot be
reached (callers skip, saying so), 2 this machine cannot host the emulation (not Linux
x86-64, or qemu missing and not installable), 1 anything else.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import logging
import os
import platform
import shutil
import stat
import subprocess
import sys
import time
import zipfile
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

from emulation_sources import AptSource, codename, debian_sources, sources_text

__all__ = [
    "EXIT_UNREACHABLE", "EXIT_UNSUPPORTED", "Emulation", "SetupError", "Unreachable", "Unsupported",
    "apt_options", "cache_key", "default_cache_dir", "ensure", "main", "network_trouble",
]

log = logging.getLogger("emulation_setup")

LAYOUT = 1  # bump when the cache's layout or contents change
WHEELS = ("iree-base-runtime", "numpy", "ml_dtypes")
ROOT_PACKAGES = ("python3-minimal", "libpython3-stdlib", "libstdc++6", "libgcc-s1")
WHEEL_PLATFORMS = ("manylinux_2_28_aarch64", "manylinux_2_27_aarch64", "manylinux_2_17_aarch64",
                   "manylinux2014_aarch64")
EXIT_UNSUPPORTED = 2
EXIT_UNREACHABLE = 3

# What apt and pip print when they cannot reach a server (not: a package that does not exist).
_NETWORK_MARKERS = ("Could not resolve", "Temporary failure resolving", "Temporary failure in name resolution",
                    "Could not connect", "Connection failed", "Network is unreachable", "Connection refused",
                    "Connection timed out", "NewConnectionError", "ConnectTimeout", "Max retries exceeded",
                    "ProxyError", "No route to host", "Failed to establish a new connection")


class SetupError(RuntimeError):
    """The set-up failed for a reason other than the network; says which step and its output."""


class Unreachable(SetupError):
    """A package registry (Debian's or PyPI) cannot be reached from this machine."""


class Unsupported(SetupError):
    """This machine cannot host the emulated targets (not Linux x86-64, or no qemu-user-static)."""


@dataclass(frozen=True)
class Emulation:
    """A ready set-up: run aarch64 Python as `python` (a wrapper around qemu-aarch64-static
    that sets up the sysroot and the wheels), x86-64 code as `qemu_x86_64 -cpu Haswell ...`."""

    root: str
    sysroot: str
    site: str
    python: str
    python_version: str
    qemu_aarch64: str
    qemu_x86_64: str
    packages: dict[str, str] = field(default_factory=dict)
    wheels: dict[str, str] = field(default_factory=dict)
    built_seconds: float = 0.0
    cached: bool = False
    seconds: float = 0.0

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)


def default_cache_dir(environ: dict[str, str] | None = None) -> Path:
    """`$PLANC_EMULATION_CACHE`, else `$XDG_CACHE_HOME/planc-emulation`, else `~/.cache/planc-emulation`."""
    env = os.environ if environ is None else environ
    if env.get("PLANC_EMULATION_CACHE"):
        return Path(env["PLANC_EMULATION_CACHE"])
    base = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "planc-emulation"


def wheel_pins() -> dict[str, str]:
    """The wheels to fetch for aarch64, at the versions installed in this environment."""
    pins = {}
    for name in WHEELS:
        try:
            pins[name] = metadata.version(name)
        except metadata.PackageNotFoundError as e:
            raise SetupError(f"{name} is not installed here; install the project first (pip install -e '.[dev]')") from e
    return pins


def cache_key(suite: str, pins: dict[str, str]) -> str:
    """What the cached set-up depends on: the Debian suite, the root packages, the wheel pins."""
    text = json.dumps({"layout": LAYOUT, "suite": suite, "packages": ROOT_PACKAGES, "wheels": pins},
                      sort_keys=True)
    return f"{suite}-" + hashlib.sha256(text.encode()).hexdigest()[:12]


def apt_options(state: Path) -> list[str]:
    """apt-get options that fetch arm64 packages into `state`, leaving the system's apt alone."""
    return [
        "-oAPT::Architecture=arm64", "-oAPT::Architectures=arm64",
        f"-oDir::State::Lists={state / 'lists'}", f"-oDir::State::status={state / 'status'}",
        f"-oDir::Cache={state / 'cache'}", f"-oDir::Etc::SourceList={state / 'sources.list'}",
        f"-oDir::Etc::SourceParts={state / 'sources.list.d'}", "-oAcquire::Languages=none",
        "-oAPT::Sandbox::User=root", "-oDebug::NoLocking=1",
    ]


# ---------------------------------------------------------------- running tools

def _run(argv: list[str], what: str, *, cwd: Path | None = None, timeout: float = 600,
         network: bool = False, quiet: bool = False) -> str:
    log.log(logging.DEBUG if quiet else logging.INFO, "%s: %s", what, " ".join(argv))
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}
    try:
        proc = subprocess.run(argv, check=False, cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=timeout)
    except FileNotFoundError as e:
        raise SetupError(f"{what}: {argv[0]} not found") from e
    except subprocess.TimeoutExpired as e:
        kind = Unreachable if network else SetupError
        raise kind(f"{what}: no answer within {timeout:.0f}s ({' '.join(argv[:3])} ...)") from e
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        _raise(what, argv, out)
    return out


def _raise(what: str, argv: list[str], out: str) -> None:
    tail = "\n".join(out.strip().splitlines()[-15:])
    kind = Unreachable if network_trouble(out) else SetupError
    raise kind(f"{what} failed: {' '.join(argv)}\n{tail}")


def network_trouble(out: str) -> bool:
    """Whether apt's or pip's output says a server could not be reached."""
    return any(marker in out for marker in _NETWORK_MARKERS)


# ---------------------------------------------------------------- qemu

def _qemu() -> tuple[str, str]:
    names = ("qemu-aarch64-static", "qemu-x86_64-static")
    found = [shutil.which(n) for n in names]
    if all(found):
        return found[0] or "", found[1] or ""
    if not shutil.which("apt-get") or os.geteuid() != 0:
        raise Unsupported("qemu-user-static is not installed and this user cannot install it; "
                          "run `apt-get install qemu-user-static` as root")
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "qemu-user-static"]
    try:
        _run(cmd, "installing qemu-user-static", network=True)
    except SetupError:  # stale package lists: refresh them once
        _run(["apt-get", "update", "-q"], "apt-get update", network=True)
        _run(cmd, "installing qemu-user-static", network=True)
    found = [shutil.which(n) for n in names]
    if not all(found):
        raise SetupError("qemu-user-static was installed but " + ", ".join(
            n for n, f in zip(names, found) if not f) + " is not on PATH")
    return found[0] or "", found[1] or ""


# ---------------------------------------------------------------- the arm64 sysroot

def _apt_state(cache: Path, sources: list[AptSource]) -> Path:
    state = cache / "apt"
    for sub in ("lists/partial", "cache/archives/partial", "sources.list.d"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    (state / "sources.list").write_text(sources_text(sources, arch="arm64"))
    (state / "status").touch()
    return state


def _resolve(state: Path) -> dict[str, str]:
    """Package -> version: the root packages and everything they need, for an empty arm64 system."""
    opts = apt_options(state)
    try:  # a failed update may still leave usable lists from an earlier run
        update_out = _run(["apt-get", *opts, "update"], "apt-get update (arm64 lists)", network=True)
    except SetupError as e:
        update_out = str(e)
    argv = ["apt-get", *opts, "-s", "--no-install-recommends", "install", *ROOT_PACKAGES]
    try:
        out = _run(argv, "resolving arm64 packages")
    except SetupError as e:
        if network_trouble(update_out):
            raise Unreachable(f"Debian's archive cannot be reached:\n{update_out[-1500:]}") from e
        raise
    found = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "Inst":
            found[parts[1]] = parts[2].strip("(")
    if not found:
        raise SetupError(f"apt resolved no arm64 packages for {', '.join(ROOT_PACKAGES)}:\n{out[-1500:]}")
    return found


def _sysroot(state: Path, packages: dict[str, str], work: Path) -> Path:
    debs, sysroot = work / "debs", work / "sysroot"
    debs.mkdir()
    names = [f"{n}={v}" for n, v in sorted(packages.items())]
    _run(["apt-get", *apt_options(state), "download", *names], "downloading arm64 packages", cwd=debs, network=True)
    for deb in sorted(debs.glob("*.deb")):
        _run(["dpkg-deb", "-x", str(deb), str(sysroot)], f"unpacking {deb.name}", quiet=True)
    shutil.rmtree(debs)
    return sysroot


def _python_version(sysroot: Path) -> str:
    target = (sysroot / "usr/bin/python3").readlink() if (sysroot / "usr/bin/python3").is_symlink() else None
    name = target.name if target else ""
    if not name.startswith("python3."):
        found = sorted(p.name for p in (sysroot / "usr/bin").glob("python3.*"))
        name = found[0] if found else ""
    if not name:
        raise SetupError(f"no python3 in the arm64 sysroot {sysroot}")
    return name.removeprefix("python")


# ---------------------------------------------------------------- wheels

def _wheels(pins: dict[str, str], py: str, work: Path) -> Path:
    wheels, site = work / "wheels", work / "site"
    argv = [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--retries", "2",
            "--timeout", "30", "--no-deps", "--only-binary=:all:", "--implementation", "cp",
            "--python-version", py, "--abi", "cp" + py.replace(".", ""), "-d", str(wheels),
            *(f"--platform={p}" for p in WHEEL_PLATFORMS), *(f"{n}=={v}" for n, v in pins.items())]
    _run(argv, "downloading aarch64 wheels", network=True)
    for wheel in sorted(wheels.glob("*.whl")):
        with zipfile.ZipFile(wheel) as z:
            z.extractall(site)
    shutil.rmtree(wheels)
    # zipfile drops the exec bits: IREE's tools (iree-run-module, ...) need them back.
    for tool in (site / "iree" / "_runtime_libs").glob("iree-*"):
        if tool.is_file():
            tool.chmod(tool.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return site


_WRAPPER = """#!/bin/sh
# aarch64 Python under qemu-user (no binfmt needed); sys.executable is this script, so
# subprocesses the runtime starts with sys.executable are emulated too.
here=$(cd "$(dirname "$0")/.." && pwd)
export PYTHONPATH="$here/site${{PYTHONPATH:+:$PYTHONPATH}}" PYTHONNOUSERSITE=1
exec {qemu} -L "$here/sysroot" -0 "$here/bin/python3" "$here/sysroot/usr/bin/python{py}" "$@"
"""


def _wrapper(work: Path, qemu: str, py: str) -> None:
    # Empty site dirs in the sysroot keep qemu's -L from falling back to the host's x86 ones.
    for d in ("usr/lib/python3/dist-packages", f"usr/local/lib/python{py}/dist-packages"):
        (work / "sysroot" / d).mkdir(parents=True, exist_ok=True)
    (work / "bin").mkdir()
    wrapper = work / "bin" / "python3"
    wrapper.write_text(_WRAPPER.format(qemu=qemu, py=py))
    wrapper.chmod(0o755)


def _smoke(python: Path) -> None:
    code = "import platform, numpy, iree.runtime; print(platform.machine(), numpy.__version__)"
    out = _run([str(python), "-c", code], "starting the emulated Python", timeout=300)
    if not out.startswith("aarch64"):
        raise SetupError(f"the emulated Python does not report aarch64: {out[:300]}")


# ---------------------------------------------------------------- the whole set-up

def _host_ok() -> None:
    if not sys.platform.startswith("linux") or platform.machine() != "x86_64":
        raise Unsupported(f"the emulated targets need a Linux x86-64 host, this is {sys.platform} "
                          f"{platform.machine()}")


def _load(root: Path, started: float) -> Emulation | None:
    ready = root / "ready.json"
    if not ready.is_file():
        return None
    try:
        data = json.loads(ready.read_text())
        data.update(cached=True, seconds=round(time.perf_counter() - started, 3))
        emu = Emulation(**data)
    except (ValueError, TypeError) as e:  # a torn or older record: build again
        log.warning("ignoring %s: %s", ready, e)
        return None
    return emu if Path(emu.python).is_file() and Path(emu.qemu_aarch64).is_file() else None


def _build(cache: Path, root: Path, sources: list[AptSource], pins: dict[str, str], qemu: tuple[str, str],
           started: float) -> Emulation:
    work = root.with_name(root.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    state = _apt_state(cache, sources)
    packages = _resolve(state)
    sysroot = _sysroot(state, packages, work)
    py = _python_version(sysroot)
    _wheels(pins, py, work)
    _wrapper(work, qemu[0], py)
    shutil.rmtree(root, ignore_errors=True)
    work.rename(root)
    python = root / "bin" / "python3"
    try:
        _smoke(python)
    except SetupError:
        shutil.rmtree(root, ignore_errors=True)
        raise
    emu = Emulation(str(root), str(root / "sysroot"), str(root / "site"), str(python), py, qemu[0], qemu[1],
                    packages, pins, round(time.perf_counter() - started, 1))
    (root / "ready.json").write_text(emu.to_json())
    for old in cache.iterdir():  # earlier keys' set-ups are dead weight
        if old.is_dir() and old.name not in ("apt", root.name) and not old.name.startswith("."):
            shutil.rmtree(old, ignore_errors=True)
    return emu


def ensure(cache_dir: Path | None = None) -> Emulation:
    """The emulation set-up, built on first use and reused afterwards (safe across processes).

    Raises Unreachable when a registry cannot be reached, Unsupported when this machine
    cannot host it, SetupError for anything else."""
    started = time.perf_counter()
    _host_ok()
    cache = cache_dir or default_cache_dir()
    sources = debian_sources()
    if not sources:
        raise Unsupported("no Debian archive in this machine's apt sources (/etc/apt); the arm64 "
                          "sysroot comes from Debian")
    root = cache / cache_key(codename(sources), wheel_pins())
    emu = _load(root, started)
    if emu is not None:
        return emu
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building (or installing qemu)
        emu = _load(root, started)
        if emu is not None:
            return emu
        built = _build(cache, root, sources, wheel_pins(), _qemu(), started)
    return Emulation(**{**asdict(built), "seconds": round(time.perf_counter() - started, 3)})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache-dir", type=Path, help="default: ~/.cache/planc-emulation")
    ap.add_argument("--json", action="store_true", help="print the set-up as JSON")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    try:
        emu = ensure(args.cache_dir)
    except Unreachable as e:
        print(f"emulation set-up: package registries unreachable: {e}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except Unsupported as e:
        print(f"emulation set-up: unsupported here: {e}", file=sys.stderr)
        return EXIT_UNSUPPORTED
    except (SetupError, OSError) as e:
        print(f"emulation set-up: failed: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(emu.to_json())
    else:
        how = "cached" if emu.cached else "built"
        print(f"{how} in {emu.seconds:.2f}s: {emu.root}\n  aarch64 python {emu.python_version}: {emu.python}\n"
              f"  x86-64 (Haswell): {emu.qemu_x86_64} -cpu Haswell")
    return 0


if __name__ == "__main__":
    sys.exit(main())
