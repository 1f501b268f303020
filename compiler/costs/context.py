"""The compile context: the device profile, the tuned model and the cost model, resolved once per compile.

Like MLIR's MLIRContext, one is made for a compile (`bundle/build.py`) and handed to the
passes that price tasks (merge, schedule), to the manifest and to explain, so `devices.toml`
and the tuned file are read once, not once per pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from planc.compiler.costs.deploy import default_deployment
from planc.compiler.costs.model import CostModel, RooflineModel
from planc.compiler.costs.profiles import Profile, ProfileError, load_profile
from planc.compiler.costs.tuned_model import TunedModel, Tuning, load_tuning
from planc.compiler.ir.graph import PlanGraph
from planc.dsl.diagnostics import Diagnostic, DiagnosticError

__all__ = ["CompileContext", "cost_model"]


@dataclass(eq=False)
class CompileContext:
    """What a whole compile shares. `tuned` is the tuned profile's path ("" for none); the
    profile, the tuning and each deployment's cost model are read on first use and kept.
    `reads` counts the files read (the profile and the tuned file), so a test can pin "once"."""

    tuned: str = ""
    reads: int = 0
    _profile: Profile | None = field(default=None, repr=False)
    _tuning: Tuning | None = field(default=None, repr=False)
    _models: dict[str, CostModel] = field(default_factory=dict, repr=False)

    @property
    def profile(self) -> Profile:
        if self._profile is None:
            self._profile = load_profile()
            self.reads += 1
        return self._profile

    @property
    def tuning(self) -> Tuning | None:
        if self.tuned and self._tuning is None:
            self._tuning = load_tuning(self.tuned)
            self.reads += 1
        return self._tuning

    def cost_model(self, graph: PlanGraph, deploy: str = "") -> CostModel:
        """The roofline over the deployment (named, a file, or the default for the plan's targets),
        wrapped by the tuned corrections when there are any. A bad deployment or profile is a
        diagnostic at the plan (E0601), not a crash of the pass."""
        name = deploy or default_deployment(graph.info.targets)
        model = self._models.get(name)
        if model is None:
            try:
                model = RooflineModel(self.profile, name)
                tuning = self.tuning
                if tuning is not None:
                    model = TunedModel(model, tuning)
            except ProfileError as e:
                raise DiagnosticError([Diagnostic.error("E0601", f"cannot use deployment or profile: {e}",
                                                        graph.info.span)]) from None
            self._models[name] = model
        return model


def cost_model(graph: PlanGraph, deploy: str = "", tuned: str = "") -> CostModel:
    """A cost model for one question, outside a compile (a fresh context: the files are read)."""
    return CompileContext(tuned).cost_model(graph, deploy)
