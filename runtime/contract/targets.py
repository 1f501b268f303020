"""The targets planc compiles for: what IREE is asked to build and what a host needs to run it.

The compiler builds from this table (codegen/targets.py turns a spec into iree-compile flags);
the runtime picks variants by it (host/detect.py), unless a manifest variant names its own
`requires` and `rank`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from planc.enums import TextEnum

__all__ = ["ALSO_RUNS", "KNOWN_TARGETS", "X86_LEVELS", "Backend", "Target", "TargetSpec"]


class Backend(enum.Enum):
    """IREE executable backends planc compiles for."""

    LLVM_CPU = "llvm-cpu"
    CUDA = "cuda"
    VMVX = "vmvx"


# x86-64 micro-architecture levels (psABI): the features LLVM enables for `x86-64-v3` and
# `x86-64-v4` beyond the x86-64 baseline (cmov, cx8, fxsr, mmx, sse, sse2, x87), as IREE
# 3.13 resolves them. Named in LLVM's spelling, which is also the host detector's spelling.
_X86_V2 = ("sse3", "ssse3", "sse4.1", "sse4.2", "popcnt", "cx16", "sahf", "crc32")
_X86_V3 = (*_X86_V2, "avx", "avx2", "bmi", "bmi2", "f16c", "fma", "lzcnt", "movbe", "xsave")
_X86_V4 = (*_X86_V3, "avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl")
X86_LEVELS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"x86-64-v2": _X86_V2, "x86-64-v3": _X86_V3, "x86-64-v4": _X86_V4}
)
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


# Device kind -> the other targets whose code it also runs (an AVX-512 CPU runs AVX2 code, an
# sm90 GPU runs sm80 code; every CPU runs the portable vmvx variant).
ALSO_RUNS: Mapping[str, frozenset[str]] = MappingProxyType({
    "x86_64-avx512": frozenset({"x86_64-avx2", "vmvx"}),
    "x86_64-avx2": frozenset({"vmvx"}),
    "aarch64-neon": frozenset({"vmvx"}),
    "cuda-sm90": frozenset({"cuda-sm80"}),
})

# Each target's preference (higher wins) and what a host needs to run it, by name.
KNOWN_TARGETS: Mapping[str, tuple[int, frozenset[str]]] = MappingProxyType(
    {t.value: (t.rank, t.requires) for t in sorted(Target, key=lambda t: -t.rank)}
)
