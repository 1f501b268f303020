"""Compiler passes, one module per pass, and their registry.

A pass is a frozen dataclass with `name: ClassVar[str]`, its options as fields, and
`run(self, graph) -> PlanGraph` that never mutates its input (`build` alone starts from
the AST Plan). Add a pass by importing it here and listing it in PASSES.
"""

from __future__ import annotations

from typing import ClassVar, Protocol

from planc.compiler.ir.graph import PlanGraph
from planc.compiler.passes.build import Build
from planc.compiler.passes.infer_types import InferTypes
from planc.compiler.passes.merge import Merge
from planc.compiler.passes.schedule import Schedule
from planc.compiler.passes.verify import Verify

__all__ = ["PASSES", "Build", "InferTypes", "Merge", "Pass", "Schedule", "Verify"]


class Pass(Protocol):
    name: ClassVar[str]

    def run(self, graph: PlanGraph) -> PlanGraph: ...


# name -> pass class; the pipeline syntax (`-p "build,verify,infer-types"`) looks names up here.
PASSES: dict[str, type] = {
    Build.name: Build,
    Verify.name: Verify,
    InferTypes.name: InferTypes,
    Merge.name: Merge,
    Schedule.name: Schedule,
}
