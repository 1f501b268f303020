"""What the tuned cost model knows about one device kind, and how it predicts a module's time."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from planc.compiler.costs.model import ComputeFacts, RooflineModel
from planc.compiler.costs.profiles import Deployment, DeviceInstance, DeviceSpec, Profile
from planc.compiler.costs.tuned_model import DeviceFit, TunedModel, Tuning

__all__ = ["KindModel"]

_EMPTY_PROFILE = Profile(1, MappingProxyType({}), MappingProxyType({}), MappingProxyType({}), 0.1, ())


@dataclass(frozen=True, slots=True)
class KindModel:
    """What the tuned cost model knows about one device kind: its spec (peaks, bandwidth,
    dispatch overhead) and the non-overlapped fraction `serial` (cost_model.DeviceFit)."""

    spec: DeviceSpec
    serial: float = 0.0
    full: DeviceFit | None = None  # the fuller form (fit_full), when fitted so

    def predict(self, facts: ComputeFacts) -> float:
        """Seconds the compiler's cost model gives `facts` on a device of this kind."""
        if self.full is not None and self.full.blend > 0:
            return self.full.time(sum(f / self.spec.peak(dt) for dt, f in facts.by_dtype()), facts)
        dep = Deployment("tune", (DeviceInstance("dev", self.spec),), "dev")
        base = RooflineModel(_EMPTY_PROFILE, dep)
        if self.serial == 0.0:
            return base.compute_time(facts, "dev")
        tuning = Tuning(devices=MappingProxyType({"dev": self.device_fit()}))
        return TunedModel(base, tuning).compute_time(facts, "dev")

    def device_fit(self) -> DeviceFit:
        if self.full is not None:
            return self.full
        s = self.spec
        return DeviceFit(s.peak_flops, s.mem_bandwidth, s.dispatch_overhead, self.serial)
