"""Host detection (env override and the real machine) and the choice of variant."""

import os
import platform
import shutil
import subprocess
import sys
import sysconfig

import pytest
from planc.runtime.host import cpu_features as cpu
from planc.runtime.host.detect import (
    KNOWN_TARGETS,
    CudaDevice,
    Host,
    HostSpecError,
    NoVariantError,
    choose_variant,
    describe,
    detect,
    normalize_arch,
    parse_host_spec,
    ranked_variants,
)

ALL = {name: {} for name in KNOWN_TARGETS}
V3 = cpu.X86_LEVELS["x86-64-v3"]
V4 = cpu.X86_LEVELS["x86-64-v4"]


# ---------------------------------------------------------------- PLANRT_HOST

def test_spec_with_features_and_aliases():
    host = parse_host_spec("x86_64:avx2,fma,bmi1,sse4_2,abm")
    assert host.arch == "x86_64"
    assert host.features == {"avx2", "fma", "bmi", "sse4.2", "lzcnt"}
    assert host.cuda == () and host.source == "PLANRT_HOST"
    assert host.capabilities == {"x86_64", "avx2", "fma", "bmi", "sse4.2", "lzcnt"}


def test_spec_levels_and_cuda():
    host = parse_host_spec("amd64:x86-64-v4;cuda=8.0,9.0")
    assert host.arch == "x86_64" and set(V4) <= host.features
    assert [d.capability for d in host.cuda] == [(8, 0), (9, 0)]
    assert host.cuda_sm == 90 and "cuda" in host.capabilities
    unknown = parse_host_spec("aarch64:neon;cuda")
    assert [d.capability for d in unknown.cuda] == [None] and unknown.cuda_sm is None
    assert parse_host_spec("x86_64;cuda=sm_86").cuda[0].capability == (8, 6)


@pytest.mark.parametrize("spec", ["", ":avx2", "x86 64:avx2", "x86_64;rocm=9", "x86_64;cuda=eight"])
def test_bad_spec_names_the_variable(spec):
    with pytest.raises(HostSpecError, match="PLANRT_HOST="):
        parse_host_spec(spec)


def test_detect_uses_the_override_only():
    host = detect({"PLANRT_HOST": "aarch64:asimd"})
    assert host == Host("aarch64", frozenset({"neon"}), (), source="PLANRT_HOST")


def test_normalize_arch():
    assert [normalize_arch(m) for m in ("AMD64", "x86_64", "arm64", "aarch64", "riscv64")] == [
        "x86_64", "x86_64", "aarch64", "aarch64", "riscv64"]


# ---------------------------------------------------------------- the real machine

def test_real_host_detection():
    host = detect({}, cuda=False)
    assert host.arch == normalize_arch(platform.machine())
    if host.arch == "x86_64":
        assert host.source == "cpu: cpuid"
        assert {"sse", "sse2"} <= host.features  # the x86-64 baseline
    if host.arch == "aarch64":
        assert "neon" in host.features


@pytest.mark.skipif(not os.path.exists("/proc/cpuinfo") or platform.machine() != "x86_64",
                    reason="needs Linux on x86-64")
def test_cpuid_agrees_with_the_kernel_on_real_hardware():
    # Natively (no emulator) CPUID and the kernel's flags describe the same CPU; the
    # kernel also clears flags the OS does not support, as the XCR0 check here does.
    tracked = set(V4) - {"crc32"}
    ours = cpu.cpu_features("x86_64")[0] & tracked
    kernel = cpu._procfs_cpuinfo_features("flags") & tracked
    assert ours == kernel


@pytest.mark.skipif(not os.path.exists("/proc/self/auxv"), reason="needs Linux")
def test_auxv_readers_agree():
    # AT_HWCAP is what aarch64 and riscv64 detection reads.
    from_procfs = cpu._hwcap_from_procfs()
    assert from_procfs != 0
    if platform.machine() == "x86_64":
        # The kernel's x86 AT_HWCAP is CPUID.1:EDX (glibc's getauxval answers its own
        # bits there, so it is not compared); SSE2 is part of the baseline.
        assert from_procfs >> 26 & 1
    else:
        assert cpu._hwcap_from_libc() == from_procfs


def test_detection_in_a_fresh_process_agrees():
    code = "from planc.runtime.host.detect import detect; h = detect({}, cuda=False); print(h.arch, *sorted(h.features))"
    env = {k: v for k, v in os.environ.items() if k != "PLANRT_HOST"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         timeout=60, env=env)
    here = detect({}, cuda=False)
    assert out.stdout.split() == [here.arch, *sorted(here.features)]


def _registers(features, leaf, sub, reg):
    bits = cpu._CPUID_BITS.get((leaf, sub, reg), {})
    return sum(1 << bit for bit, name in bits.items() if name in features)


def _leaves(features, osxsave=True):
    leaves = {}
    for leaf, sub in {(lf, sb) for lf, sb, _ in cpu._CPUID_BITS}:
        leaves[(leaf, sub)] = tuple(_registers(features, leaf, sub, r) for r in range(4))
    if osxsave:
        eax, ebx, ecx, edx = leaves[(1, 0)]
        leaves[(1, 0)] = (eax, ebx, ecx | 1 << 27, edx)
    return leaves


def test_cpuid_decoding_of_a_haswell():
    # The registers of a CPU that is not here (as qemu -cpu Haswell reports them).
    haswell = set(V3) - {"crc32"} | {"sse", "sse2", "aes"}
    assert cpu.decode_cpuid(_leaves(haswell), xcr0=0x7) == frozenset(haswell | {"crc32"})


def test_cpuid_decoding_honours_what_the_os_saves():
    skx = set(V4) - {"crc32"} | {"sse", "sse2"}
    assert set(V4) <= cpu.decode_cpuid(_leaves(skx), xcr0=0xE7)
    no_zmm = cpu.decode_cpuid(_leaves(skx), xcr0=0x7)  # OS saves YMM but not ZMM state
    assert "avx2" in no_zmm and not any(f.startswith("avx512") for f in no_zmm)
    no_xsave = cpu.decode_cpuid(_leaves(skx, osxsave=False), xcr0=None)
    assert "avx" not in no_xsave and "fma" not in no_xsave and "bmi2" in no_xsave


def test_no_cuda_is_not_an_error():
    host = detect({})  # probes IREE's cuda driver; on a machine without CUDA: no devices
    assert all(isinstance(d, CudaDevice) for d in host.cuda)
    assert host.notes  # says what the CUDA probe found


@pytest.mark.gpu
def test_cuda_devices_are_found_with_capability():
    host = detect({})
    if not host.cuda:
        pytest.skip("no CUDA device here")
    assert host.cuda_sm is not None and host.cuda_sm >= 50
    assert choose_variant(ALL, host).startswith("cuda-")


# ---------------------------------------------------------------- choosing

HOSTS = {
    "zen4": Host("x86_64", frozenset(V4)),
    "haswell": Host("x86_64", frozenset(V3)),
    "old-x86": Host("x86_64", frozenset({"sse", "sse2", "avx", "avx2", "fma"})),  # no bmi2, movbe...
    "graviton": Host("aarch64", frozenset({"neon"})),
    "a100": Host("x86_64", frozenset(V3), (CudaDevice(0, "A100", (8, 0)),)),
    "h100": Host("x86_64", frozenset(V4), (CudaDevice(0, "H100", (9, 0)),)),
    "t4": Host("x86_64", frozenset(V3), (CudaDevice(0, "T4", (7, 5)),)),
    "gpu-unknown": Host("aarch64", frozenset({"neon"}), (CudaDevice(0, "?", None),)),
    "mystery": Host("mips64"),
}


@pytest.mark.parametrize(
    ("host", "available", "expected"),
    [
        ("zen4", ALL, "x86_64-avx512"),
        ("haswell", ALL, "x86_64-avx2"),
        ("old-x86", ALL, "vmvx"),
        ("graviton", ALL, "aarch64-neon"),
        ("a100", ALL, "cuda-sm80"),
        ("h100", ALL, "cuda-sm90"),
        ("t4", ALL, "x86_64-avx2"),
        ("gpu-unknown", ALL, "cuda-sm80"),            # lowest sm assumed
        ("gpu-unknown", {"cuda-sm90": {}, "vmvx": {}}, "cuda-sm90"),  # the lowest offered
        ("mystery", ALL, "vmvx"),
        ("zen4", {"x86_64-avx2": {}, "aarch64-neon": {}}, "x86_64-avx2"),
        ("h100", {"x86_64-avx2": {}, "cuda-sm80": {}}, "cuda-sm80"),
    ],
)
def test_choice_table(host, available, expected):
    assert choose_variant(available, HOSTS[host]) == expected


def test_device_kind_restricts_the_choice():
    assert choose_variant(ALL, HOSTS["h100"], device="cpu") == "x86_64-avx512"
    assert choose_variant(ALL, HOSTS["h100"], device="gpu") == "cuda-sm90"
    with pytest.raises(NoVariantError, match="on a gpu"):
        choose_variant(ALL, HOSTS["zen4"], device="gpu")
    with pytest.raises(ValueError, match="expected one of: cpu, gpu"):
        choose_variant(ALL, HOSTS["zen4"], device="tpu")


def test_ranked_variants_best_first():
    assert ranked_variants(ALL, HOSTS["h100"]) == ["cuda-sm90", "cuda-sm80", "x86_64-avx512", "x86_64-avx2", "vmvx"]


def test_manifest_requirements_and_rank_override_the_table():
    available = {"x86_64-avx2": {"requires": ["x86_64", "avx2"]}, "custom": {"requires": ["x86_64"], "rank": 99}}
    assert choose_variant(available, HOSTS["old-x86"]) == "custom"
    assert choose_variant({"x86_64-avx2": {"requires": ["x86_64", "avx2"]}}, HOSTS["old-x86"]) == "x86_64-avx2"


def test_no_variant_error_lists_bundle_and_host():
    available = {"aarch64-neon": {}, "cuda-sm90": {}, "weird": {}}
    with pytest.raises(NoVariantError) as e:
        choose_variant(available, HOSTS["a100"], module="g3")
    message = str(e.value)
    assert "no variant of module 'g3' can run here" in message
    assert "aarch64-neon: host lacks aarch64, neon" in message
    assert "cuda-sm90: needs sm_90, the best device is sm_80" in message
    assert "weird: unknown target" in message
    assert "host: x86_64 [" in message and "A100 (sm_80)" in message


def test_describe_marks_the_choice():
    text = describe(HOSTS["haswell"], ALL)
    assert "arch:     x86_64" in text and "cuda:     none" in text
    assert "variant x86_64-avx2    chosen" in text
    assert "variant x86_64-avx512  no: host lacks avx512bw" in text
    assert "variant vmvx           runs" in text
    assert describe(detect({}, cuda=False)).startswith("arch:")


# ---------------------------------------------------------------- under an emulated CPU

QEMU = shutil.which("qemu-x86_64") or shutil.which("qemu-x86_64-static")
PURELIB = sysconfig.get_paths()["purelib"]
DETECT = """
import site; site.addsitedir({purelib!r})
from planc.runtime.host import cpu_features
from planc.runtime.host.detect import KNOWN_TARGETS, choose_variant, detect
host = detect({{}}, cuda=False)
print(host.source)
print(*sorted(host.features))
print(*sorted(cpu_features._procfs_cpuinfo_features("flags")))
print(choose_variant({{name: {{}} for name in KNOWN_TARGETS}}, host))
"""


def _detect_under_qemu(cpu_model):
    env = {k: v for k, v in os.environ.items() if k != "PLANRT_HOST"}
    out = subprocess.run([QEMU, "-cpu", cpu_model, sys.executable, "-c", DETECT.format(purelib=PURELIB)],
                         capture_output=True, text=True, timeout=120, env=env, check=True)
    source, ours, kernel, choice = out.stdout.splitlines()
    return source, set(ours.split()), set(kernel.split()), choice


@pytest.mark.emulation
@pytest.mark.skipif(QEMU is None or platform.machine() != "x86_64", reason="needs qemu-x86_64 on x86-64")
def test_emulated_haswell_is_seen_as_haswell():
    source, ours, kernel, choice = _detect_under_qemu("Haswell")
    assert source == "cpu: cpuid"
    assert set(V3) <= ours and not any(f.startswith("avx512") for f in ours)
    assert choice == "x86_64-avx2"
    # /proc/cpuinfo inside the emulator still describes the real CPU.
    real = cpu._procfs_cpuinfo_features("flags")
    assert kernel == real


@pytest.mark.emulation
@pytest.mark.skipif(QEMU is None or platform.machine() != "x86_64", reason="needs qemu-x86_64 on x86-64")
def test_emulated_nehalem_gets_the_portable_variant():
    _, ours, _, choice = _detect_under_qemu("Nehalem")
    assert "sse4.2" in ours and "avx" not in ours
    assert choice == "vmvx"
