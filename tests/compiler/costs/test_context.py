"""The compile context: a compile reads the device profile and the tuned file once, and shares its cost models."""

from __future__ import annotations

from pathlib import Path

import pytest
from planc.compiler.bundle.build import BuildOptions, optimize
from planc.compiler.costs.context import CompileContext, cost_model
from planc.dsl.diagnostics import DiagnosticError

PLAN = Path(__file__).resolve().parents[3] / "examples" / "sensors" / "sensors.plan"


def test_one_compile_reads_the_profile_once() -> None:
    ctx = CompileContext()
    graph = optimize(PLAN, plan="sensors", options=BuildOptions(deploy="edge-x86-gpu"),
                     context=ctx).graph
    assert ctx.reads == 1  # merge and schedule priced tasks on one model
    model = ctx.cost_model(graph, "edge-x86-gpu")
    assert ctx.cost_model(graph, "edge-x86-gpu") is model and ctx.reads == 1
    # the same answers as a model made on its own
    alone = cost_model(graph, "edge-x86-gpu")
    assert alone is not model and alone.describe() == model.describe()


    with pytest.raises(DiagnosticError) as e:  # a bad deployment is a diagnostic at the plan
        ctx.cost_model(graph, "no-such-deployment")
    assert e.value.diagnostics[0].code == "E0601" and ctx.reads == 1
