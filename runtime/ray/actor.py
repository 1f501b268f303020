"""The Ray engine's worker side: one long-lived actor per (node, device) holding IREE modules.

`ModuleHost` is a plain class; the driver wraps it with `ray.remote` (see ray_engine), so
this module imports no Ray at import time and a node needs only planc's runtime, its
dependencies and Ray itself. Each module is loaded once and then called many times.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
from planc.runtime.engine.modules import Device, LoadedModule, ModuleError
from planc.runtime.engine.params import Parameters
from planc.runtime.host.detect import detect, variant_problem

__all__ = ["ModuleHost"]


class ModuleHost:
    """A device on one node and the modules the driver placed there."""

    def __init__(self, driver: str, node: str):
        self.node = node
        self.device = Device(driver)
        self.modules: dict[str, LoadedModule] = {}
        self.targets: dict[str, str] = {}
        self.params: Parameters | None = None
        # What this worker itself detects (PLANRT_HOST, set by `planrt node start --host`, wins).
        self.host = detect(cuda=driver == "cuda")

    def info(self) -> dict[str, Any]:
        import ray

        return {"pid": os.getpid(), "node_id": ray.get_runtime_context().get_node_id(), "node": self.node,
                "driver": self.device.driver, "arch": self.host.arch, "host_source": self.host.source,
                "planrt_host": os.environ.get("PLANRT_HOST"), "modules": dict(self.targets)}

    def load(self, name: str, target: str, variant: dict[str, Any], vmfb: bytes,
             inputs: list[str], outputs: list[str], params: Any = None,
             scope: str = "planc") -> dict[str, Any]:
        """Loads one module variant, after checking this worker's CPU can run it."""
        problem = variant_problem(target, {target: variant}, self.host)
        if problem is not None:
            raise ModuleError(f"node '{self.node}' was placed module '{name}' as {target}, but this worker "
                              f"cannot run it: {problem} (its labels disagree with its CPU; restart it with "
                              "`planrt node start`)")
        if self.targets.get(name) != target:
            if params is not None and self.params is None:  # the bundle's weights: one index per worker
                self.params = Parameters(params, scope)
            self.modules[name] = LoadedModule(name, self.device, vmfb, inputs, outputs,
                                              self.params if params is not None else None)
            self.targets[name] = target
        return self.info()

    def invoke(self, name: str, *arrays: np.ndarray) -> tuple[Any, ...]:
        """Runs a module: (timing record, *outputs); the driver asks for 1 + outputs returns."""
        mod = self.modules[name]
        start = time.perf_counter()
        outs = mod(*arrays)
        meta = {"pid": os.getpid(), "seconds": time.perf_counter() - start, "target": self.targets[name],
                "host": self.host.source, "planrt_host": os.environ.get("PLANRT_HOST")}
        return (meta, *outs)

    def ping(self, x: Any = None) -> int:
        """An empty call (dispatch cost); with an array argument, its size (a transfer's cost)."""
        return 0 if x is None else int(np.asarray(x).nbytes)

    def make(self, nbytes: int) -> np.ndarray:
        """An array made on this node, for transfer measurements."""
        return np.zeros(nbytes, np.uint8)
