"""Compile-time check of every ONNX module's builds against ONNX Runtime on sample inputs.

IREE sometimes miscompiles silently, so each build this host can run is run on seeded
sample inputs and compared with ONNX Runtime running the original file; a mismatch is an
error naming the model, the module and the target. Builds for other hosts (another
architecture, missing CPU features, CUDA) are listed as unchecked; the test suite runs them
in the emulation tier.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from planc.compiler.codegen.lower import LoweredModule
from planc.compiler.codegen.targets import Target
from planc.compiler.ir.graph import ComputeTask, GroupTask, ModelDecl, ModelKind, PlanGraph
from planc.compiler.models.onnx_file import declared_inputs, load_onnx
from planc.dsl.ast import TensorType
from planc.dsl.diagnostics import Diagnostic

__all__ = ["RTOL", "OnnxCheck", "compare", "reference_outputs", "sample_inputs", "verify_onnx_builds"]

log = logging.getLogger(__name__)

RTOL = 1e-4  # of the largest reference magnitude (elementwise relative error is meaningless near 0)
_NP = {"f32": np.float32, "f16": np.float16, "i8": np.int8, "i32": np.int32, "i64": np.int64, "bool": np.bool_}


@dataclass
class OnnxCheck:
    """What the check did: per (module, target) the relative error, and builds it could not run."""

    errors: dict[tuple[str, str], float] = field(default_factory=dict)
    unchecked: dict[tuple[str, str], str] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)


def sample_inputs(types: Sequence[TensorType], seed_text: str) -> list[np.ndarray]:
    """Seeded inputs: floats uniform in [0, 1) (image-like), integers and bools zero (safe as indices)."""
    seed = int.from_bytes(hashlib.sha256(seed_text.encode()).digest()[:8], "little")
    rng = np.random.default_rng(seed)
    out = []
    for t in types:
        np_dtype = _NP.get(t.dtype.value, np.float32)
        if np.issubdtype(np_dtype, np.floating):
            out.append(rng.random(t.shape, dtype=np.float32).astype(np_dtype))
        else:
            out.append(np.zeros(t.shape, dtype=np_dtype))
    return out


def reference_outputs(decl: ModelDecl, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
    """ONNX Runtime on the original file (its own graph optimizations, CPU provider)."""
    import onnxruntime as ort

    model = load_onnx(decl)
    names = [i.name for i in declared_inputs(model)]
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return [np.asarray(o) for o in session.run(None, dict(zip(names, arrays)))]


def compare(got: Sequence[np.ndarray], want: Sequence[np.ndarray]) -> float:
    """The largest |got - want| over the largest |want|, across all outputs (inf on a shape mismatch)."""
    worst = 0.0
    for g, w in zip(got, want):
        g, w = np.asarray(g), np.asarray(w)
        if g.shape != w.shape:
            return float("inf")
        if w.size == 0:
            continue
        scale = max(float(np.max(np.abs(w.astype(np.float64)))), 1e-30)
        worst = max(worst, float(np.max(np.abs(g.astype(np.float64) - w.astype(np.float64)))) / scale)
    return worst


def _run_vmfb(data: bytes, module: str, arrays: Sequence[np.ndarray], archive: bytes | None = None) -> list[np.ndarray]:
    import iree.runtime as rt

    config = rt.Config("local-sync")
    vm = rt.VmModule.copy_buffer(config.vm_instance, data)
    extra = []
    if archive is not None:  # the bundle's weights (codegen/params.py)
        from planc.runtime.engine.params import Parameters

        extra = [Parameters(archive, "planc").module(config.vm_instance)]
    ctx = rt.SystemContext(vm_modules=[*extra, vm], config=config)
    out = ctx.modules[module]["main"](*arrays)
    outs = out if isinstance(out, (tuple, list)) else [out]
    return [np.asarray(o.to_host() if hasattr(o, "to_host") else o) for o in outs]


def _onnx_decl(graph: PlanGraph, module: LoweredModule) -> ModelDecl | None:
    group = next((t for t in graph.walk() if isinstance(t, GroupTask) and t.name == module.name), None)
    if group is None or len(group.members) != 1 or not isinstance(group.members[0], ComputeTask):
        return None
    decl = graph.info.model(group.members[0].model)
    return decl if decl.kind is ModelKind.ONNX else None


def _host_caps() -> frozenset[str]:
    from planc.runtime.host.detect import detect

    return detect(cuda=False).capabilities


def verify_onnx_builds(graph: PlanGraph, modules: Sequence[LoweredModule], targets: Sequence[Target],
                       built: Mapping[tuple[str, Target], bytes], *, rtol: float = RTOL,
                       archive: bytes | None = None) -> OnnxCheck:
    """Runs every ONNX module's builds that this host can run against ONNX Runtime (`archive`: the
    parameter archive the modules load their weights from)."""
    result = OnnxCheck()
    onnx_modules = [(m, d) for m in modules if (d := _onnx_decl(graph, m)) is not None]
    if not onnx_modules:
        return result
    try:
        import onnxruntime  # noqa: F401 - the reference is a dev dependency
    except ImportError:
        for m, _ in onnx_modules:
            for t in targets:
                result.unchecked[(m.name, t.value)] = "onnxruntime is not installed"
        log.warning("ONNX builds NOT checked against ONNX Runtime: onnxruntime is not installed")
        return result
    caps = _host_caps()
    for m, decl in onnx_modules:
        arrays = sample_inputs(m.input_types, f"{m.name}:{decl.path.name}")  # type: ignore[arg-type]
        want = reference_outputs(decl, arrays)
        for t in targets:
            if t.backend.value != "llvm-cpu" or not set(t.requires) <= caps:
                result.unchecked[(m.name, t.value)] = "this host cannot run it"
                continue
            err = compare(_run_vmfb(built[(m.name, t)], m.name, arrays, archive), want)
            result.errors[(m.name, t.value)] = err
            log.info("ONNX check: module %s (%s) on %s: max relative error %.2e", m.name, decl.name, t.value, err)
            if not err <= rtol:
                result.diagnostics.append(Diagnostic.error(
                    "E0502", f"the {t.value} build of ONNX model '{decl.name}' (module '{m.name}') differs from "
                    f"ONNX Runtime: max relative error {err:.2e} > {rtol:.0e}", decl.span,
                    label="IREE miscompiled this model for this target",
                    help="drop the target with --target, or report it to IREE with --save-temps DIR"))
    return result
