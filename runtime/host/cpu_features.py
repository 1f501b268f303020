"""CPU features of the machine this process runs on, asked of the CPU or the kernel.

On x86-64, CPUID and XGETBV run as a few bytes of machine code mapped executable through
ctypes: an emulated CPU (`qemu-x86_64 -cpu Haswell`) reports what it emulates, where
/proc/cpuinfo shows the real host's flags. On aarch64 and riscv64 the kernel's hardware
capabilities come from the auxiliary vector (getauxval), which qemu-user emulates too.
Feature names are LLVM's ("avx2", "bmi", "sse4.2", "neon", "v").
"""

from __future__ import annotations

import ctypes
import logging
import mmap
import sys

from planc.runtime.contract.targets import X86_LEVELS

__all__ = ["X86_LEVELS", "cpu_features", "decode_cpuid", "normalize_feature"]

log = logging.getLogger(__name__)


# /proc/cpuinfo (Linux) flag names -> LLVM feature names, where they differ.
_PROCFS_ALIASES = {"pni": "sse3", "sse4_1": "sse4.1", "sse4_2": "sse4.2", "bmi1": "bmi",
                   "abm": "lzcnt", "lahf_lm": "sahf", "avx512_vbmi2": "avx512vbmi2",
                   "avx512_vnni": "avx512vnni", "avx512_bitalg": "avx512bitalg",
                   "avx512_vpopcntdq": "avx512vpopcntdq", "avx512_fp16": "avx512fp16",
                   "avx512_bf16": "avx512bf16", "avx_vnni": "avxvnni", "asimd": "neon"}


def normalize_feature(name: str) -> str:
    """LLVM's name for a feature given in LLVM's or /proc/cpuinfo's spelling."""
    name = name.strip().lower()
    return _PROCFS_ALIASES.get(name, name)


# ---------------------------------------------------------------- x86-64: CPUID and XGETBV

_CPUID_CODE = bytes.fromhex(
    "53" "4989d0" "89f8" "89f1" "0fa2"          # push rbx; r8 = out; eax = leaf; ecx = subleaf; cpuid
    "418900" "41895804" "41894808" "4189500c"   # out[0..3] = eax, ebx, ecx, edx
    "5b" "c3"                                    # pop rbx; ret
)
_XGETBV_CODE = bytes.fromhex("89f9" "0f01d0" "48c1e220" "4809d0" "c3")  # ecx = idx; xgetbv; rdx:rax

# (leaf, subleaf, register index) -> {bit: feature}
_CPUID_BITS: dict[tuple[int, int, int], dict[int, str]] = {
    (1, 0, 2): {0: "sse3", 9: "ssse3", 12: "fma", 13: "cx16", 19: "sse4.1", 20: "sse4.2",
                22: "movbe", 23: "popcnt", 25: "aes", 26: "xsave", 28: "avx", 29: "f16c"},
    (1, 0, 3): {25: "sse", 26: "sse2"},
    (7, 0, 1): {3: "bmi", 5: "avx2", 8: "bmi2", 16: "avx512f", 17: "avx512dq", 21: "avx512ifma",
                28: "avx512cd", 30: "avx512bw", 31: "avx512vl"},
    (7, 0, 2): {1: "avx512vbmi", 6: "avx512vbmi2", 11: "avx512vnni", 12: "avx512bitalg",
                14: "avx512vpopcntdq"},
    (7, 0, 3): {23: "avx512fp16"},
    (7, 1, 0): {4: "avxvnni", 5: "avx512bf16"},
    (0x80000001, 0, 2): {0: "sahf", 5: "lzcnt", 6: "sse4a"},
}
_NEEDS_YMM = {"avx", "avx2", "fma", "f16c", "avxvnni"}


_Leaves = dict[tuple[int, int], tuple[int, ...]]


def _run_cpuid(base: int, leaves_wanted: set[tuple[int, int]]) -> tuple[_Leaves, int | None]:
    cpuid = ctypes.CFUNCTYPE(None, ctypes.c_uint32, ctypes.c_uint32, ctypes.POINTER(ctypes.c_uint32))(base)
    xgetbv = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_uint32)(base + len(_CPUID_CODE))
    out = (ctypes.c_uint32 * 4)()

    def query(leaf: int, sub: int = 0) -> tuple[int, ...]:
        cpuid(leaf, sub, out)
        return tuple(out)

    max_leaf, max_ext = query(0)[0], query(0x80000000)[0]
    max_sub7 = query(7, 0)[0] if max_leaf >= 7 else -1
    leaves: dict[tuple[int, int], tuple[int, ...]] = {}
    for leaf, sub in sorted(leaves_wanted):
        top = max_ext if leaf >= 0x80000000 else max_leaf
        if leaf <= top and (leaf != 7 or sub <= max_sub7):
            leaves[(leaf, sub)] = query(leaf, sub)
    osxsave = bool(leaves.get((1, 0), (0, 0, 0, 0))[2] >> 27 & 1)
    return leaves, (int(xgetbv(0)) if osxsave else None)


def _call_machine_code() -> tuple[_Leaves, int | None]:
    """Runs CPUID for the leaves planc reads, and XGETBV(0) when the OS enabled XSAVE."""
    if sys.platform == "win32" or not hasattr(mmap, "PROT_EXEC"):
        raise OSError("no executable anonymous mappings on this platform")
    if ctypes.sizeof(ctypes.c_void_p) != 8:
        raise OSError("the CPUID helper is x86-64 code; this is a 32-bit process")
    buf = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    try:
        buf.write(_CPUID_CODE + _XGETBV_CODE)
        view = ctypes.c_char.from_buffer(buf)
        try:
            return _run_cpuid(ctypes.addressof(view), {(lf, sb) for lf, sb, _ in _CPUID_BITS})
        finally:
            del view
    finally:
        buf.close()


def decode_cpuid(leaves: _Leaves, xcr0: int | None) -> frozenset[str]:
    """Feature names from CPUID registers by (leaf, subleaf), and XCR0 (None: no OSXSAVE)."""
    features: set[str] = set()
    for (leaf, sub, reg), bits in _CPUID_BITS.items():
        value = leaves.get((leaf, sub), (0, 0, 0, 0))[reg]
        features.update(name for bit, name in bits.items() if value >> bit & 1)
    if "sse4.2" in features:
        features.add("crc32")
    # Registers the OS does not save on a context switch cannot be used (XCR0 bits).
    if xcr0 is None or xcr0 & 0x6 != 0x6:
        features -= _NEEDS_YMM | {f for f in features if f.startswith("avx512")}
    elif xcr0 & 0xE6 != 0xE6:
        features -= {f for f in features if f.startswith("avx512")}
    return frozenset(features)


# ---------------------------------------------------------------- Linux files, auxv

def _procfs_cpuinfo_features(key: str) -> frozenset[str]:
    with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
        for line in f:
            name, sep, value = line.partition(":")
            if sep and name.strip().lower() == key:
                return frozenset(normalize_feature(v) for v in value.split())
    return frozenset()


_AT_HWCAP = 16


def _hwcap_from_libc() -> int | None:
    try:
        libc = ctypes.CDLL(None)  # the process's own symbols, libc's among them
        getauxval = libc.getauxval
    except (OSError, AttributeError):
        return None
    getauxval.restype = ctypes.c_ulong
    getauxval.argtypes = [ctypes.c_ulong]
    return int(getauxval(_AT_HWCAP))


def _hwcap_from_procfs() -> int:
    with open("/proc/self/auxv", "rb") as f:
        data = f.read()
    words = [int.from_bytes(data[i:i + 8], sys.byteorder) for i in range(0, len(data) - 7, 8)]
    return dict(zip(words[::2], words[1::2])).get(_AT_HWCAP, 0)


def _hwcap() -> int:
    """The kernel's AT_HWCAP: /proc/self/auxv (qemu-user emulates it), else libc's getauxval."""
    try:
        return _hwcap_from_procfs()
    except OSError:
        value = _hwcap_from_libc()
        if value is None:
            raise
        return value


def _aarch64_features() -> tuple[frozenset[str], str]:
    if sys.platform == "darwin":
        return frozenset({"neon"}), "baseline (Apple silicon)"
    try:
        return (frozenset({"neon"}) if _hwcap() & (1 << 1) else frozenset()), "auxv AT_HWCAP"
    except OSError:
        return _procfs_cpuinfo_features("features") & {"neon"}, "/proc/cpuinfo"


def _riscv64_features() -> tuple[frozenset[str], str]:
    hwcap = _hwcap()  # one bit per single-letter extension, 'a' is bit 0
    return frozenset(c for c in "imafdcv" if hwcap >> (ord(c) - ord("a")) & 1), "auxv AT_HWCAP"


def _x86_features() -> tuple[frozenset[str], str]:
    try:
        return decode_cpuid(*_call_machine_code()), "cpuid"
    except (OSError, ValueError, TypeError) as e:
        log.warning("CPUID unavailable (%s); falling back to the OS's feature list", e)
    if sys.platform.startswith("linux"):
        return _procfs_cpuinfo_features("flags"), "/proc/cpuinfo (CPUID unavailable)"
    return frozenset(), "none (CPUID unavailable)"


def cpu_features(arch: str) -> tuple[frozenset[str], str]:
    """The features of this machine's CPU (of architecture `arch`) and how they were found."""
    detectors = {"x86_64": _x86_features, "aarch64": _aarch64_features, "riscv64": _riscv64_features}
    if arch not in detectors:
        return frozenset(), "unknown architecture"
    try:
        return detectors[arch]()
    except OSError as e:
        log.warning("could not read the CPU features of this %s host: %s", arch, e)
        return frozenset(), f"none ({e})"
