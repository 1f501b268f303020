"""Candidate builds of one CPU module: named IREE flag sets crossed with runtime drivers.

A module may be built several ways for one CPU target; which is fastest depends on the
model (im2col suits the recognizer's convs and slows the detector's, channels-last suits
resnets) and on the host, so planc builds the candidates, checks each against the reference,
and measures (at compile time on the host, or in planrt on the first load elsewhere). The
table here is pure data: what to pass to iree-compile, and which runtime settings to try.
Weights are not this module's business (parameter archives are shared by every candidate).
"""

from __future__ import annotations

from dataclasses import dataclass

from planc.compiler.codegen.targets import Backend, Target

__all__ = [
    "DEFAULT_SETS",
    "FLAG_SETS",
    "ORT",
    "ORT_CANDIDATES",
    "PLAIN",
    "Candidate",
    "FlagSet",
    "candidates_for",
    "flag_set",
    "parse_sets",
]

PLAIN = "plain"
ORT = "ort"  # the driver of an ONNX Runtime candidate (ort_form.py), where planc[ort] is installed
ORT_CANDIDATES = ("ort", "ort-nchwc")

_PRE = "--iree-preprocessing-pass-pipeline=builtin.module(util.func({}))"


@dataclass(frozen=True, slots=True)
class FlagSet:
    """A named set of extra iree-compile flags; `about` says what it changes and where it helps."""

    name: str
    flags: tuple[str, ...]
    about: str


FLAG_SETS: dict[str, FlagSet] = {s.name: s for s in (
    FlagSet(PLAIN, (), "planc's default build (O2, the target's CPU and features)"),
    FlagSet("nhwc", (_PRE.format("iree-preprocessing-convert-conv-to-channels-last"),),
            "convs rewritten to channels-last (NHWC/HWCF) before dispatch formation"),
    FlagSet("im2col", ("--iree-global-opt-use-im2col-for-convs",),
            "convs become im2col + matmul in global optimization (matmul data tiling applies)"),
    FlagSet("img2col", (_PRE.format("iree-preprocessing-convert-conv2d-to-img2col"),),
            "convs become an explicit img2col + matmul before dispatch formation (iree-org/iree#22674)"),
    FlagSet("conv-dt", ("--iree-dispatch-creation-experimental-set-data-tiling-ops=matmul",
                        "--iree-dispatch-creation-experimental-set-data-tiling-ops=convolution",
                        "--iree-llvmcpu-enable-ukernels=all"),
            "data-tiled (packed NCHWc) convs lowered to ukernels (iree-org/iree#24710, experimental)"),
    FlagSet("nhwc-uk", (_PRE.format("iree-preprocessing-convert-conv-to-channels-last"),
                        "--iree-llvmcpu-enable-ukernels=all"),
            "channels-last with every CPU ukernel enabled"),
)}

# What `planc compile --candidates auto` builds for a CPU target.
DEFAULT_SETS: tuple[str, ...] = (PLAIN, "nhwc", "im2col", "img2col")


def flag_set(name: str) -> FlagSet:
    try:
        return FLAG_SETS[name]
    except KeyError:
        raise ValueError(f"unknown flag set {name!r}, expected one of: {', '.join(FLAG_SETS)}") from None


def parse_sets(text: str) -> tuple[str, ...]:
    """`plain,nhwc` -> ('plain', 'nhwc'); `auto` -> DEFAULT_SETS; `none` -> ('plain',). plain is always in."""
    text = text.strip()
    if text == "auto":
        return DEFAULT_SETS
    names = [p.strip() for p in text.split(",") if p.strip() and p.strip() != "none"]
    for n in names:
        flag_set(n)
    return tuple(dict.fromkeys([PLAIN, *names]))


@dataclass(frozen=True, slots=True)
class Candidate:
    """One way to run a module on a CPU target: a build (flag set) and how the runtime drives it.

    `workers` is local-task's worker count (None: IREE's default, one per core); local-sync
    runs on the calling thread.
    """

    flags: str
    driver: str
    workers: int | None = None

    @property
    def name(self) -> str:
        if self.driver == ORT:
            return self.flags  # `ort` or `ort-nchwc`: ONNX Runtime runs the model itself
        w = f"x{self.workers}" if self.workers else ""
        return f"{self.flags}/{self.driver}{w}"

    @classmethod
    def parse(cls, name: str) -> Candidate:
        """The inverse of `name`: `nhwc/local-task`, `plain/local-taskx2` or `ort`."""
        if name in ORT_CANDIDATES:
            return cls(name, ORT)
        flags, _, run = name.partition("/")
        flag_set(flags)
        workers = None
        if run.startswith("local-task") and run != "local-task":
            workers = int(run[len("local-taskx"):])
            run = "local-task"
        if run not in ("local-sync", "local-task"):
            raise ValueError(f"unknown driver in candidate {name!r}, expected local-sync or local-task")
        return cls(flags, run, workers)


def candidates_for(target: Target, sets: tuple[str, ...], cores: int) -> tuple[Candidate, ...]:
    """Every (flag set, driver) pair worth measuring for `target`; CUDA and VMVX get plain only.

    local-task is tried with IREE's default workers (the host's cores); with one core it is
    local-sync's cost plus a thread hop, so it is left out.
    """
    if target.backend is not Backend.LLVM_CPU:
        return (Candidate(PLAIN, target.driver),)
    drivers: list[tuple[str, int | None]] = [("local-sync", None)]
    if cores > 1:
        drivers.append(("local-task", None))
    return tuple(Candidate(s, d, w) for s in sets for d, w in drivers)
