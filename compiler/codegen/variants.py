"""Candidate builds per module and CPU target: which to compile, and the measured choice among them.

For every CPU target, a module whose code has convolutions is also built with the named flag sets
of candidates.py (through the same parallel compile and content cache as the plain build); a set
that IREE refuses is recorded and dropped, never an error. When the target is the best CPU target
this host runs, the candidates are timed here (runtime/engine/measure.py: checked against the plain
build, interleaved medians) and the bundle keeps the winner and the plain build; for any other
target it keeps every candidate and planrt measures on the first load on its host. Weight handling
is not this module's business: every candidate is compiled from the same module text.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from planc.compiler.codegen.candidates import ORT, PLAIN, Candidate, candidates_for
from planc.compiler.codegen.compile import CompileJob
from planc.compiler.codegen.targets import Backend, Target

__all__ = ["VariantBuilds", "candidate_jobs", "conv_like", "job_name", "measure_here", "ort_builds", "plan_variant"]

log = logging.getLogger(__name__)

# StableHLO, linalg and torch-onnx spellings of a convolution.
_CONV = re.compile(r"stablehlo\.convolution|linalg\.conv_|onnx\.Conv\b|torch\.aten\.convolution")


def conv_like(mlir: str) -> bool:
    """Whether the flag sets (all about convolutions) can change this module's code."""
    return _CONV.search(mlir) is not None


def job_name(module: str, flags: str) -> str:
    """The compile job (and cache progress) name of one build: `det` or `det@nhwc`."""
    return module if flags == PLAIN else f"{module}@{flags}"


def candidate_jobs(module: str, mlir: str, targets: Sequence[Target], sets: Sequence[str]) -> list[CompileJob]:
    """The extra (non-plain) builds of one module: one job per flag set and CPU target."""
    from planc.compiler.codegen.candidates import flag_set

    if len(sets) <= 1 or not conv_like(mlir):
        return []
    return [CompileJob(job_name(module, s), t, mlir, flag_set(s).flags)
            for t in targets if t.backend is Backend.LLVM_CPU for s in sets if s != PLAIN]


@dataclass
class VariantBuilds:
    """What one (module, target) variant carries: the member per built flag set, its candidates,
    the reference, and the compile-time choice when one was measured."""

    members: dict[str, bytes]                 # member path -> vmfb
    candidates: list[dict[str, Any]]          # manifest records: name, flags, driver, path
    reference: str
    failed: dict[str, str] = field(default_factory=dict)   # flag set -> why IREE refused it
    choice: dict[str, Any] | None = None


def _member(module: str, target: Target, flags: str) -> str:
    base = f"modules/{module}/{target.value}"
    return f"{base}.vmfb" if flags == PLAIN else f"{base}.{flags}.vmfb"


def plan_variant(module: str, target: Target, built: Mapping[tuple[str, Target], bytes],
                 sets: Sequence[str], failed: Mapping[tuple[str, Target], str], *, default_driver: str,
                 cores: int, ort: Mapping[str, bytes] | None = None) -> VariantBuilds:
    """The members and candidate records of one variant from the compile results (`built` holds
    every build that compiled, keyed by (job name, target); `failed` the refusals; `ort` the
    ONNX Runtime forms of an ONNX module, by form name)."""
    v = _iree_variant(module, target, built, sets, failed, default_driver=default_driver, cores=cores)
    if not ort:
        return v
    if not v.candidates:
        v.candidates = [{"name": v.reference, "flags": PLAIN, "driver": default_driver,
                         "path": _member(module, target, PLAIN)}]
    for form, data in ort.items():
        path = f"modules/{module}/{target.value}.{form}.ort"
        v.members[path] = data
        v.candidates.append({"name": form, "flags": form, "driver": ORT, "path": path})
    return v


def _iree_variant(module: str, target: Target, built: Mapping[tuple[str, Target], bytes],
                  sets: Sequence[str], failed: Mapping[tuple[str, Target], str], *, default_driver: str,
                  cores: int) -> VariantBuilds:
    have: list[str] = []
    for s in sets:  # a flag set that changes nothing in this module (same bytes) is no candidate
        data = built.get((job_name(module, s), target))
        if data is not None and all(built[(job_name(module, h), target)] != data for h in have):
            have.append(s)
    refused = {s: failed[(job_name(module, s), target)] for s in sets if (job_name(module, s), target) in failed}
    members = {_member(module, target, s): built[(job_name(module, s), target)] for s in have}
    if len(have) <= 1:
        return VariantBuilds(members, [], f"{PLAIN}/{default_driver}", refused)
    cands = [c for c in candidates_for(target, tuple(have), cores)]
    records = [{"name": c.name, "flags": c.flags, "driver": c.driver, "path": _member(module, target, c.flags)}
               for c in cands]
    ref = Candidate(PLAIN, default_driver).name
    if ref not in {r["name"] for r in records}:
        ref = records[0]["name"]
    records.sort(key=lambda r: r["name"] != ref)  # the reference first
    return VariantBuilds(members, records, ref, refused)


def measure_here(module: str, target: Target, v: VariantBuilds, inputs: Sequence[Mapping[str, Any]],
                 outputs: Sequence[Mapping[str, Any]], host_key: str, *, budget_s: float = 2.0,
                 params: Any = None) -> None:
    """Time the candidates of `v` on this host, record the choice and keep only the winner's and
    the plain build's members (and their candidates)."""
    from planc.runtime.engine.measure import Build, fastest, measure
    from planc.runtime.engine.modules import ModuleError

    builds = [Build(c["name"], v.members[c["path"]], c["driver"], params) for c in v.candidates]
    try:
        measured = measure(builds, [t["dtype"] for t in inputs], [t["shape"] for t in inputs],
                           [t["dtype"] for t in outputs], reference=v.reference, budget_s=budget_s)
    except ModuleError as e:  # the plain build does not run here: planrt measures on its host
        log.warning("%s/%s: candidates not measured here (%s)", module, target.value, e)
        return
    best = fastest(measured, reference=v.reference)
    v.choice = {"host": host_key, "chosen": best, "seconds": {n: m.seconds for n, m in measured.items()},
                "notes": {n: m.note for n, m in measured.items() if m.note}}
    keep_flags = {PLAIN, Candidate.parse(best).flags}
    v.candidates = [c for c in v.candidates if c["flags"] in keep_flags]
    keep_paths = {c["path"] for c in v.candidates}
    v.members = {p: b for p, b in v.members.items() if p in keep_paths}
    log.info("%s/%s: chose %s of %d measured candidates", module, target.value, best, len(measured))


def ort_builds(onnx_path, target: Target, host_target: Target | None,
               memo: dict[tuple[str, str], bytes | None]) -> dict[str, bytes]:
    """The ONNX Runtime forms of an ONNX model for one target's variant (ort_form.py), by form;
    none off x86-64, or where onnxruntime is not importable or cannot optimize the model (logged).
    `memo` keeps each (file, form) made once per build."""
    from planc.compiler.codegen.ort_form import OrtFormError, ort_format, ort_forms_for

    out: dict[str, bytes] = {}
    for form in ort_forms_for(target, host_target):
        key = (str(onnx_path), form)
        if key not in memo:
            try:
                memo[key] = ort_format(str(onnx_path), form, name=str(onnx_path))
            except OrtFormError as e:
                log.warning("no ONNX Runtime candidate: %s", e)
                memo[key] = None
        data = memo[key]
        if data is not None:
            out[form] = data
    return out
