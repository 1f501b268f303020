"""Compilation targets as iree-compile flags; the target table itself is the runtime's vocabulary
(planc.runtime.contract.targets)."""

from __future__ import annotations

from planc.runtime.contract.targets import Backend, Target, TargetSpec

__all__ = [
    "OPT_LEVELS",
    "Backend",
    "Target",
    "TargetSpec",
    "compile_flags",
    "parse_targets",
]

OPT_LEVELS = (0, 1, 2, 3)


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
