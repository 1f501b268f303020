"""`planc check`'s type pass for plans with ONNX models: their inputs are matched against what
each ONNX file declares (rank, dims, dtype) and their outputs typed, as compile would."""

from __future__ import annotations

from planc.compiler.passes import Build, InferTypes, Verify
from planc.compiler.pipeline import run_pipeline
from planc.dsl import ast as A
from planc.dsl.diagnostics import Diagnostic, DiagnosticError

__all__ = ["type_diagnostics", "uses_onnx"]


def uses_onnx(plan: A.Plan) -> bool:
    return any(isinstance(s, A.Model) and s.kind.name == "onnx" for s in plan.body)


def type_diagnostics(module: A.Module) -> list[Diagnostic]:
    """Diagnostics of building and typing every plan that declares an ONNX model (the files
    are prepared, and cached, as a compile would; jax models are traced without cost facts)."""
    out: list[Diagnostic] = []
    for plan in module.plans:
        if not uses_onnx(plan):
            continue
        try:
            run_pipeline(plan, (Build(), Verify(), InferTypes(facts=False)))
        except DiagnosticError as e:
            out.extend(e.diagnostics)
    return out
