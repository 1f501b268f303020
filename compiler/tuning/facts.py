"""The cost facts (flops, bytes) of a bundle's modules, as the merge pass computed them."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from planc.compiler.codegen.lower import value_types
from planc.compiler.costs.deploy import task_facts
from planc.compiler.costs.model import ComputeFacts, merge_facts
from planc.compiler.ir.graph import PlanGraph, Task, ValueRef
from planc.compiler.passes import Build, InferTypes, Verify
from planc.compiler.pipeline import PipelineOptions, front_check, run_pipeline
from planc.dsl.diagnostics import DiagnosticError
from planc.dsl.parser import parse_file

__all__ = ["TuneError", "bundle_facts", "module_facts", "source_of"]


class TuneError(ValueError):
    """Tuning cannot go on: names the bundle, module, trace or file at fault and what to do."""


def source_of(manifest: Mapping[str, Any], bundle_path: Path, source: Path | None = None) -> Path:
    """The .plan file a bundle was built from: `source`, else the manifest's source file
    next to the bundle. Its sha256 must be the one the manifest records."""
    recorded = manifest.get("source") or {}
    name = recorded.get("file")
    path = source if source is not None else (bundle_path.parent / name if name else None)
    if path is None or not path.is_file():
        where = f"{path} does not exist" if path is not None else "the manifest names no source file"
        raise TuneError(f"cannot find the plan {bundle_path} was built from ({where}); "
                        "pass --source FILE.plan")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if recorded.get("sha256") and recorded["sha256"] != digest:
        raise TuneError(f"{path} is not the source {bundle_path} was built from (sha256 {digest[:12]}, the "
                        f"bundle records {str(recorded['sha256'])[:12]}); "
                        "rebuild the bundle or pass --source")
    return path


def bundle_facts(manifest: Mapping[str, Any], bundle_path: Path, source: Path | None = None
                 ) -> dict[str, ComputeFacts]:
    """Flops and bytes of every module of a bundle: the manifest's `facts` where each module
    has them, else recomputed from the plan source (typed IR, members merged as the merge
    pass merges them: one dispatch, intermediates that stay inside not counted)."""
    modules = manifest.get("modules") or {}
    if source is not None:
        source_of(manifest, bundle_path, source)  # a --source given is checked, even if unused
    if modules and all(isinstance(m.get("facts"), dict) for m in modules.values()):
        return {name: _recorded(name, m) for name, m in modules.items()}
    path = source_of(manifest, bundle_path, source)
    graph = _typed_graph(path, str(manifest.get("plan", "")))
    return {name: module_facts(graph, name, m) for name, m in modules.items()}


def _recorded(name: str, module: Mapping[str, Any]) -> ComputeFacts:
    f = module["facts"]
    dtype = (module.get("outputs") or [{}])[0].get("dtype", "f32")
    return ComputeFacts(float(f.get("flops", 0.0)), float(f.get("bytes_accessed", 0.0)), dtype, key=name)


def _typed_graph(path: Path, plan: str) -> PlanGraph:
    module = parse_file(path)
    diags = front_check(module)
    if any(d.is_error for d in diags):
        raise DiagnosticError(diags)
    plans = [p for p in module.plans if p.name.name == plan]
    if not plans:
        names = ", ".join(p.name.name for p in module.plans)
        raise TuneError(f"{path} has no plan '{plan}' (it has: {names})")
    return run_pipeline(plans[0], (Build(), Verify(), InferTypes()), PipelineOptions()).graph


def module_facts(graph: PlanGraph, name: str, module: Mapping[str, Any]) -> ComputeFacts:
    """The facts of the bundle module `name` (its manifest record `module`) over the typed,
    unmerged `graph` of its plan."""
    tasks: dict[str, Task] = {t.name: t for t in graph.walk()}
    members = [tasks.get(m) for m in module.get("members", [])]
    if not members or any(m is None for m in members):
        missing = [m for m in module.get("members", []) if m not in tasks] or ["(no members listed)"]
        raise TuneError(f"module '{name}' has member '{missing[0]}', which the plan source does not define; "
                        f"was the bundle built from another version of the plan?")
    types = value_types(graph)
    exported = set(module.get("results", []))
    facts: list[ComputeFacts] = []
    internal = 0
    for m in members:
        assert m is not None
        f = task_facts(m, [types.get(str(r)) if isinstance(r, ValueRef) else None for r in m.uses()])
        if f is not None:
            facts.append(f)
        internal += sum(t.nbytes for v, t in zip(m.values(), m.results)
                        if str(v) not in exported and t is not None)
    if not facts:
        raise TuneError(f"module '{name}' has no compute member")
    merged = merge_facts(facts, 2.0 * internal)
    dtype = (module.get("outputs") or [{}])[0].get("dtype", merged.dtype)
    return ComputeFacts(merged.flops, merged.bytes_accessed, dtype, key=name)
