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
from planc.compiler.codegen.targets import Backend, Target
from planc.compiler.ir.graph import ComputeTask, GroupTask, ModelDecl, ModelKind, PlanGraph
from planc.compiler.models.onnx_file import declared_inputs, load_onnx
from planc.dsl.ast import DType, TensorType
from planc.dsl.diagnostics import Diagnostic
from planc.runtime.contract.dtypes import numpy_dtype

__all__ = ["ATOL", "RTOL", "OnnxCheck", "compare", "reference_outputs", "sample_inputs", "verify_onnx_builds"]

log = logging.getLogger(__name__)

# A build passes when max |got - want| <= ATOL + RTOL * max |want| over every output. A miscompile
# is off by O(1); float reassociation is not: PP-OCRv4's 30-conv detector differs from ONNX Runtime
# by 1.3e-4 of its largest value on an image, the small test models by 1e-7..1e-6. On random inputs
# the detector's map stays below 1e-3 and differs by 1e-7 absolute (f32 rounding), hence ATOL.
RTOL = 1e-3
ATOL = 1e-5


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
        np_dtype = np.float32 if t.dtype is DType.BF16 else numpy_dtype(t.dtype.value)  # ONNX Runtime: no bf16
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


def compare(got: Sequence[np.ndarray], want: Sequence[np.ndarray], *, atol: float = 0.0) -> float:
    """The largest |got - want| beyond `atol`, over the largest |want|, across all outputs (inf on a
    shape mismatch): a build passes when this is at most RTOL."""
    worst = 0.0
    for g, w in zip(got, want):
        g, w = np.asarray(g), np.asarray(w)
        if g.shape != w.shape:
            return float("inf")
        if w.size == 0:
            continue
        scale = max(float(np.max(np.abs(w.astype(np.float64)))), 1e-30)
        diff = float(np.max(np.abs(g.astype(np.float64) - w.astype(np.float64))))
        worst = max(worst, max(0.0, diff - atol) / scale)
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
    out = ctx.modules[vm.name]["main"](*arrays)  # the module as built, whatever it is named
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
        arrays = sample_inputs(m.input_types, f"{decl.path.name}:{m.input_types}")  # type: ignore[arg-type]
        try:
            want = reference_outputs(decl, arrays)
        except Exception as e:  # noqa: BLE001 - ONNX Runtime refusing the file or the sample inputs
            why = f"ONNX Runtime cannot run it on the sample inputs: {' '.join(str(e).split())[:300]}"
            log.warning("ONNX builds of module %s (%s) NOT checked: %s", m.name, decl.name, why)
            result.unchecked.update({(m.name, t.value): why for t in targets})
            continue
        for t in targets:
            if t.backend is not Backend.LLVM_CPU or not set(t.requires) <= caps:
                result.unchecked[(m.name, t.value)] = "this host cannot run it"
                continue
            try:
                got = _run_vmfb(built[(m.name, t)], m.name, arrays, archive)
            except Exception as e:  # noqa: BLE001 - IREE's runtime raises RuntimeError, ValueError, ...
                result.diagnostics.append(Diagnostic.error(
                    "E0502", f"the {t.value} build of ONNX model '{decl.name}' (module '{m.name}') fails on "
                    f"sample inputs that ONNX Runtime runs: {' '.join(str(e).split())[:300]}", decl.span,
                    label="IREE's build of this model does not run", help="drop the target with --target, or "
                    "report it to IREE with --save-temps DIR"))
                continue
            raw, err = compare(got, want), compare(got, want, atol=ATOL)
            result.errors[(m.name, t.value)] = raw
            log.info("ONNX check: module %s (%s) on %s: max difference %.2e of the largest reference value",
                     m.name, decl.name, t.value, raw)
            if not err <= rtol:
                result.diagnostics.append(Diagnostic.error(
                    "E0502", f"the {t.value} build of ONNX model '{decl.name}' (module '{m.name}') differs from "
                    f"ONNX Runtime: max difference {raw:.2e} of its largest value ({err:.2e} beyond {ATOL:.0e}; "
                    f"at most {rtol:.0e} passes)",
                    decl.span,
                    label="IREE miscompiled this model for this target",
                    help="drop the target with --target, or report it to IREE with --save-temps DIR"))
    return result
