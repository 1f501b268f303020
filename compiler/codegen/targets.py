"""Compilation targets: what IREE is asked to build and what a host needs to run it."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from planc.enums import TextEnum

__all__ = [
    "OPT_LEVELS",
    "Backend",
    "Target",
    "TargetSpec",
    "compile_flags",
    "parse_targets",
]

OPT_LEVELS = (0, 1, 2, 3)


class Backend(enum.Enum):
    """IREE executable backends planc compiles for."""

    LLVM_CPU = "llvm-cpu"
    CUDA = "cuda"
    VMVX = "vmvx"


# x86-64 micro-architecture levels (psABI): the features LLVM enables for `x86-64-v3` and
# `x86-64-v4` beyond the x86-64 baseline (cmov, cx8, fxsr, mmx, sse, sse2, x87), as IREE
# 3.13 resolves them. Named in LLVM's spelling, which is also the host detector's spelling.
_X86_V2 = ("sse3", "ssse3", "sse4.1", "sse4.2", "popcnt", "cx16", "sahf", "crc32")
_X86_V3 = _X86_V2 + ("avx", "avx2", "bmi", "bmi2", "f16c", "fma", "lzcnt", "movbe", "xsave")
_X86_V4 = _X86_V3 + ("avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl")
_RISCV_RVA = ("m", "a", "f", "d", "c", "v")

# A CUDA target's GPU description for IREE 3.13, which has no known-target entry for
# sm_90 (iree-org/iree#22147): Ampere's workgroup-processor limits with Hopper's 227 KiB
# of shared memory, PTX 7.8 (the first with sm_90).
_SM90_DEVICE = (
    '#hal.device.target<"cuda", [#hal.executable.target<"cuda", "cuda-nvptx-fb", '
    '{iree_codegen.target_info = #iree_gpu.target<arch = "sm_90", features = "+ptx78", '
    "wgp = <compute = fp64|fp32|fp16|int64|int32|int16|int8, storage = b64|b32|b16|b8, "
    "subgroup = shuffle|arithmetic, dot = dp4xi8toi32, mma = [<NV_MMA_SYNC_F32_16x8x16_F16>, "
    "<NV_MMA_SYNC_F16_16x8x16_F16>, <NV_MMA_SYNC_F32_16x8x16_BF16>, <NV_WMMA_F32_16x16x16_F16>, "
    "<NV_WMMA_F16_16x16x16_F16>], subgroup_size_choices = [32], "
    "max_workgroup_sizes = [1024, 1024, 1024], max_thread_count_per_workgroup = 1024, "
    "max_workgroup_memory_bytes = 232448, max_workgroup_counts = [2147483647, 65535, 65535]>>}>]>"
)


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """Everything planc knows about one target.

    `requires` is the set of host capability strings (see planc.runtime.host.detect) a machine
    must have to run the variant: the CPU architecture and every CPU feature the code
    may use, or `cuda` and the minimal `sm_XX`. `rank` orders runnable variants: the
    runtime picks the highest.
    """

    backend: Backend
    arch: str                      # "x86_64", "aarch64", "riscv64", "cuda", "any"
    triple: str | None = None      # llvm-cpu only
    cpu: str | None = None         # llvm-cpu only
    features: tuple[str, ...] = ()  # llvm-cpu: LLVM features, without '+'
    abi: str | None = None         # llvm-cpu: target ABI where the triple's default is wrong
    sm: int | None = None          # cuda only: 80 for sm_80
    device: str | None = None      # cuda: explicit #hal.device.target where IREE lacks one
    drivers: tuple[str, ...] = ()  # IREE runtime drivers that run it, preferred first
    rank: int = 0

    @property
    def requires(self) -> frozenset[str]:
        if self.backend is Backend.CUDA:
            return frozenset({"cuda", f"sm_{self.sm}"})
        if self.backend is Backend.VMVX:
            return frozenset()
        return frozenset({self.arch, *self.features})


_CPU_DRIVERS = ("local-task", "local-sync")


class Target(TextEnum, noun="target"):
    """A deployment target; the value is its name in .plan files and bundles."""

    X86_64_AVX2 = "x86_64-avx2"
    X86_64_AVX512 = "x86_64-avx512"
    AARCH64_NEON = "aarch64-neon"
    RISCV64_RVV = "riscv64-rvv"
    CUDA_SM80 = "cuda-sm80"
    CUDA_SM90 = "cuda-sm90"
    VMVX = "vmvx"


    @property
    def spec(self) -> TargetSpec:
        return _SPECS[self]

    @property
    def backend(self) -> Backend:
        return self.spec.backend

    @property
    def drivers(self) -> tuple[str, ...]:
        return self.spec.drivers

    @property
    def driver(self) -> str:
        """The preferred runtime driver (the manifest's `driver`)."""
        return self.spec.drivers[0]

    @property
    def requires(self) -> frozenset[str]:
        return self.spec.requires

    @property
    def rank(self) -> int:
        return self.spec.rank

    def __str__(self) -> str:
        return self.value


_SPECS: dict[Target, TargetSpec] = {
    Target.X86_64_AVX2: TargetSpec(
        Backend.LLVM_CPU, "x86_64", triple="x86_64-unknown-linux-gnu", cpu="x86-64-v3",
        features=_X86_V3, drivers=_CPU_DRIVERS, rank=40,
    ),
    Target.X86_64_AVX512: TargetSpec(
        Backend.LLVM_CPU, "x86_64", triple="x86_64-unknown-linux-gnu", cpu="x86-64-v4",
        features=_X86_V4, drivers=_CPU_DRIVERS, rank=50,
    ),
    Target.AARCH64_NEON: TargetSpec(
        Backend.LLVM_CPU, "aarch64", triple="aarch64-unknown-linux-gnu", cpu="generic",
        features=("neon",), drivers=_CPU_DRIVERS, rank=30,
    ),
    Target.RISCV64_RVV: TargetSpec(
        Backend.LLVM_CPU, "riscv64", triple="riscv64-unknown-linux-gnu", cpu="generic-rv64",
        features=_RISCV_RVA, abi="lp64d", drivers=_CPU_DRIVERS, rank=20,
    ),
    Target.CUDA_SM80: TargetSpec(Backend.CUDA, "cuda", sm=80, drivers=("cuda",), rank=80),
    Target.CUDA_SM90: TargetSpec(
        Backend.CUDA, "cuda", sm=90, device=_SM90_DEVICE, drivers=("cuda",), rank=90,
    ),
    Target.VMVX: TargetSpec(Backend.VMVX, "any", drivers=("local-sync", "local-task"), rank=0),
}


def parse_targets(text: str) -> tuple[Target, ...]:
    """Parses a comma-separated target list (`--target x86_64-avx2,cuda-sm80`), keeping order."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise ValueError(f"empty target list, expected one or more of: {', '.join(t.value for t in Target)}")
    return tuple(dict.fromkeys(Target.parse(name) for name in names))


def _device_flags(spec: TargetSpec) -> list[str]:
    if spec.backend is Backend.CUDA:
        # With an explicit device the sm flag only documents the intent; IREE reads the attr.
        device = spec.device or "cuda"
        return [f"--iree-hal-target-device={device}", f"--iree-cuda-target=sm_{spec.sm}"]
    flags = [
        "--iree-hal-target-device=local",
        f"--iree-hal-local-target-device-backends={spec.backend.value}",
    ]
    if spec.backend is Backend.LLVM_CPU:
        flags += [
            f"--iree-llvmcpu-target-triple={spec.triple}",
            f"--iree-llvmcpu-target-cpu={spec.cpu}",
            "--iree-llvmcpu-target-cpu-features=" + ",".join("+" + f for f in spec.features),
        ]
        if spec.abi:
            flags.append(f"--iree-llvmcpu-target-abi={spec.abi}")
    return flags


def compile_flags(
    target: Target, *, opt_level: int = 2, extra: tuple[str, ...] | list[str] = ()
) -> list[str]:
    """The iree-compile flags (no tool path, input or output) that build `target`.

    Pure: the same arguments give the same list, which is part of the compile cache key.
    `extra` flags come last, so they override earlier ones.
    """
    if opt_level not in OPT_LEVELS:
        raise ValueError(f"unknown optimization level {opt_level!r}, expected one of: 0, 1, 2, 3")
    flags = ["--iree-input-type=auto", f"--iree-opt-level=O{opt_level}"]
    flags += _device_flags(target.spec)
    # Keep the output free of source paths and debug-only ops: bundles are byte-reproducible.
    flags += ["--iree-vm-bytecode-module-strip-source-map", "--iree-vm-bytecode-module-strip-debug-ops"]
    for flag in extra:
        if not flag.startswith("-"):
            raise ValueError(f"extra IREE flag {flag!r} does not start with '-'")
        flags.append(flag)
    return flags
