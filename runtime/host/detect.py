"""What this machine can run (CPU architecture and features, CUDA devices), and which variant to pick.

Detection asks this machine, never the bundle or the build machine: the CPU through
CPUID or the kernel's hardware capabilities (planc.runtime.host.cpu_features), CUDA devices
through IREE's cuda driver. `PLANRT_HOST` replaces all of it (tests, or a deliberate
choice): `x86_64:x86-64-v3;cuda=8.0`.
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from planc.runtime.contract.manifest import Variant
from planc.runtime.contract.targets import KNOWN_TARGETS, X86_LEVELS
from planc.runtime.host.cpu_features import cpu_features, normalize_feature

__all__ = [
    "ENV_VAR",
    "KNOWN_TARGETS",
    "CudaDevice",
    "Host",
    "HostSpecError",
    "NoVariantError",
    "choose_variant",
    "describe",
    "detect",
    "normalize_arch",
    "parse_host_spec",
    "ranked_variants",
    "summary_line",
    "variant_problem",
]

log = logging.getLogger(__name__)

ENV_VAR = "PLANRT_HOST"

# What each target planc compiles needs, and its preference (higher wins): the vocabulary's
# table (planc.runtime.contract.targets). A variant's own "requires" and "rank" in the
# manifest, when present, take precedence.

_ARCH_ALIASES = {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64"}


class HostSpecError(ValueError):
    """A malformed PLANRT_HOST value."""


class NoVariantError(RuntimeError):
    """No variant of a module can run here; says what the bundle has and what the host is."""


@dataclass(frozen=True, slots=True)
class CudaDevice:
    index: int
    name: str
    capability: tuple[int, int] | None  # (8, 0) for sm_80; None when it could not be read

    @property
    def sm(self) -> int | None:
        return None if self.capability is None else self.capability[0] * 10 + self.capability[1]


@dataclass(frozen=True, slots=True)
class Host:
    """A machine's capabilities: `arch` ("x86_64", "aarch64", ...), CPU `features` in LLVM's
    spelling ("avx2", "bmi2", "neon", ...), its CUDA devices, and how they were found."""

    arch: str
    features: frozenset[str] = frozenset()
    cuda: tuple[CudaDevice, ...] = ()
    source: str = "detected"
    notes: tuple[str, ...] = field(default=(), compare=False)

    @property
    def capabilities(self) -> frozenset[str]:
        return frozenset({self.arch, *self.features, *(("cuda",) if self.cuda else ())})

    @property
    def cuda_sm(self) -> int | None:
        """The highest compute capability among the CUDA devices (80 for 8.0); None if unknown."""
        known = [d.sm for d in self.cuda if d.sm is not None]
        return max(known) if known else None


def normalize_arch(machine: str) -> str:
    """`x86_64`, `aarch64`, `riscv64`, ... from platform.machine()'s spellings."""
    name = machine.strip().lower()
    return _ARCH_ALIASES.get(name, name)


# ---------------------------------------------------------------- PLANRT_HOST

def parse_host_spec(text: str) -> Host:
    """Parses `ARCH[:FEATURE,...][;cuda[=MAJOR.MINOR,...]]`, e.g. `x86_64:x86-64-v3;cuda=8.0`.

    Features use LLVM's or /proc/cpuinfo's names; `x86-64-v2`/`-v3`/`-v4` expand to their
    level's features. `cuda` alone means one device of unknown compute capability.
    """
    cpu_part, *rest = [p.strip() for p in text.split(";")]
    arch_text, _, feats = cpu_part.partition(":")
    arch = normalize_arch(arch_text)
    if not arch or not arch.replace("_", "").isalnum():
        raise HostSpecError(f"{ENV_VAR}={text!r}: expected ARCH[:FEATURE,...][;cuda[=8.0,...]]")
    features: set[str] = set()
    for name in filter(None, (f.strip() for f in feats.split(","))):
        features.update(X86_LEVELS.get(name.lower(), (normalize_feature(name),)))
    cuda: list[CudaDevice] = []
    for part in filter(None, rest):
        key, eq, value = part.partition("=")
        if key.strip() != "cuda":
            raise HostSpecError(f"{ENV_VAR}={text!r}: unknown part {part!r}, expected cuda[=MAJOR.MINOR,...]")
        caps: list[str | None] = [c.strip() for c in value.split(",") if c.strip()] if eq else []
        for cap in caps or [None]:
            cuda.append(CudaDevice(len(cuda), f"cuda:{len(cuda)}", _parse_capability(cap, text)))
    return Host(arch, frozenset(features), tuple(cuda), source=ENV_VAR)


def _parse_capability(cap: str | None, text: str) -> tuple[int, int] | None:
    if cap is None:
        return None
    major, dot, minor = cap.lower().removeprefix("sm_").partition(".")
    if not dot and len(major) >= 2:  # "80" or "sm_80"
        major, minor = major[:-1], major[-1]
    if not (major.isdigit() and minor.isdigit()):
        raise HostSpecError(f"{ENV_VAR}={text!r}: bad compute capability {cap!r}, expected e.g. 8.0 or sm_80")
    return int(major), int(minor)


# ---------------------------------------------------------------- CUDA

def _cuda_capabilities(count: int) -> list[tuple[int, int] | None]:
    """Compute capabilities by device ordinal, from the CUDA driver library (libcuda).

    IREE's cuda driver enumerates devices by the same ordinals; when the library is
    missing or disagrees on the count, every capability is unknown.
    """
    unknown: list[tuple[int, int] | None] = [None] * count
    try:
        lib = ctypes.CDLL("nvcuda.dll" if sys.platform == "win32" else "libcuda.so.1")
    except OSError:
        return unknown
    n, dev, major, minor = ctypes.c_int(), ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
    if lib.cuInit(0) != 0 or lib.cuDeviceGetCount(ctypes.byref(n)) != 0 or n.value != count:
        return unknown
    out: list[tuple[int, int] | None] = []
    for i in range(count):
        ok = lib.cuDeviceGet(ctypes.byref(dev), i) == 0
        ok = ok and lib.cuDeviceGetAttribute(ctypes.byref(major), 75, dev) == 0  # ..._MAJOR
        ok = ok and lib.cuDeviceGetAttribute(ctypes.byref(minor), 76, dev) == 0  # ..._MINOR
        out.append((major.value, minor.value) if ok else None)
    return out


def _detect_cuda() -> tuple[tuple[CudaDevice, ...], str]:
    try:
        import iree.runtime as rt
    except ImportError:
        return (), "iree.runtime missing"
    try:
        if "cuda" not in rt.query_available_drivers():
            return (), "no cuda driver in this iree-base-runtime"
        infos = rt.get_driver("cuda").query_available_devices()
    except (RuntimeError, ValueError, OSError) as e:  # no libcuda, no device, driver error
        return (), f"cuda unavailable: {str(e).splitlines()[0][:160]}"
    caps = _cuda_capabilities(len(infos))
    devices = tuple(CudaDevice(i, str(info.get("name", f"cuda:{i}")), cap)
                    for i, (info, cap) in enumerate(zip(infos, caps)))
    return devices, f"{len(devices)} cuda device(s)"


def detect(environ: Mapping[str, str] | None = None, *, cuda: bool = True) -> Host:
    """This machine's Host: `PLANRT_HOST` if set, else CPU detection plus, with `cuda`,
    IREE's CUDA devices (a machine without CUDA simply has none)."""
    env = os.environ if environ is None else environ
    spec = env.get(ENV_VAR, "").strip()
    if spec:
        return parse_host_spec(spec)
    arch = normalize_arch(platform.machine())
    features, how = cpu_features(arch)
    devices, cuda_note = _detect_cuda() if cuda else ((), "cuda not probed")
    return Host(arch, features, devices, source=f"cpu: {how}", notes=(cuda_note,))


# ---------------------------------------------------------------- choosing a variant

def _rank_and_requires(name: str, variant: Variant | Mapping[str, Any]) -> tuple[int, frozenset[str]] | None:
    known = KNOWN_TARGETS.get(name)
    if isinstance(variant, Variant):
        requires, rank = variant.requires, variant.rank
    else:
        requires, rank = variant.get("requires"), variant.get("rank")
    if requires is None and known is None:
        return None
    return (int(rank) if rank is not None else known[0] if known else 0,
            frozenset(requires) if requires is not None else known[1] if known else frozenset())


def _sm(req: str) -> int | None:
    return int(req[3:]) if req.startswith("sm_") and req[3:].isdigit() else None


def variant_problem(name: str, available: Mapping[str, Mapping[str, Any]], host: Host) -> str | None:
    """Why variant `name` of `available` cannot run on `host`, or None if it can.

    A CUDA variant for sm_XX needs a device of compute capability XX or higher (PTX is
    forward compatible). When no device's capability is known, only the lowest sm the
    bundle offers is assumed to run.
    """
    info = _rank_and_requires(name, available[name])
    if info is None:
        return "unknown target without a 'requires' list"
    caps = host.capabilities
    missing = sorted(r for r in info[1] if _sm(r) is None and r not in caps)
    if missing:
        return "host lacks " + ", ".join(missing)
    for req in info[1]:
        sm = _sm(req)
        if sm is None:
            continue
        if host.cuda_sm is not None and sm > host.cuda_sm:
            return f"needs sm_{sm}, the best device is sm_{host.cuda_sm}"
        if host.cuda_sm is None and sm > _lowest_sm(available):
            return f"needs sm_{sm}; device capability unknown, only sm_{_lowest_sm(available)} assumed"
    return None


def _lowest_sm(available: Mapping[str, Mapping[str, Any]]) -> int:
    sms = [_sm(r) for n in available for r in (_rank_and_requires(n, available[n]) or (0, ()))[1]]
    return min((s for s in sms if s is not None), default=0)


def ranked_variants(available: Mapping[str, Mapping[str, Any]], host: Host, *,
                    device: str | None = None) -> list[str]:
    """The variants that can run on `host`, best first; `device` "cpu" or "gpu" restricts them."""
    runnable = []
    for name in available:
        info = _rank_and_requires(name, available[name])
        if info is None or variant_problem(name, available, host) is not None:
            continue
        is_gpu = "cuda" in info[1]
        if device is not None and (device == "gpu") != is_gpu:
            continue
        runnable.append((info[0], name))
    return [name for _, name in sorted(runnable, key=lambda rn: (-rn[0], rn[1]))]


def choose_variant(available: Mapping[str, Mapping[str, Any]], host: Host, *,
                   device: str | None = None, module: str | None = None) -> str:
    """The best variant of a module that `host` can run (cuda > avx512 > avx2 > neon > vmvx).

    `available` maps target names to the manifest's variants (records, or their JSON). Raises
    NoVariantError naming every variant with the reason it cannot run, and the host.
    """
    if device not in (None, "cpu", "gpu"):
        raise ValueError(f"unknown device kind {device!r}, expected one of: cpu, gpu")
    ranked = ranked_variants(available, host, device=device)
    if ranked:
        return ranked[0]
    what = f"module '{module}'" if module else "this module"
    kind = f" on a {device}" if device else ""
    lines = [f"no variant of {what} can run{kind} here"]
    for name in sorted(available):
        problem = variant_problem(name, available, host)
        lines.append(f"  {name}: {problem or 'runs, but not on a ' + str(device)}")
    if not available:
        lines.append("  (the bundle has no variants)")
    lines.append("host: " + summary_line(host))
    raise NoVariantError("\n".join(lines))


def summary_line(host: Host) -> str:
    """The host in one line: architecture, CPU features, CUDA devices and where that was learned."""
    cuda = ", ".join(_cuda_text(d) for d in host.cuda) or "no cuda"
    return f"{host.arch} [{' '.join(sorted(host.features)) or 'no features'}]; {cuda} ({host.source})"


def _cuda_text(d: CudaDevice) -> str:
    return f"{d.name} (sm_{d.sm})" if d.sm is not None else f"{d.name} (capability unknown)"


def describe(host: Host, available: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """A human-readable report for `planrt inspect`: the host and, given a module's
    variants, which run here, which do not and why, and which one is chosen."""
    lines = [f"arch:     {host.arch}", f"features: {' '.join(sorted(host.features)) or '(none)'}",
             f"source:   {host.source}"]
    lines += [f"cuda:     {_cuda_text(d)}" for d in host.cuda] or ["cuda:     none"]
    lines += [f"note:     {n}" for n in host.notes]
    if available is not None:
        ranked = ranked_variants(available, host)
        for name in sorted(available):
            problem = variant_problem(name, available, host)
            mark = "chosen" if ranked and name == ranked[0] else "runs" if problem is None else "no"
            lines.append(f"variant {name:<14} {mark}{'' if problem is None else ': ' + problem}")
    return "\n".join(lines)
