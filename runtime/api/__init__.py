"""The embedding API: `load` a bundle once, `Plan.run` it many times from any thread, typed results."""

from planc.runtime.api.plan import IdempotencyConflict, Plan, load
from planc.runtime.api.results import Output, OutputKind, Result
from planc.runtime.api.signature import TensorSpec, signature

__all__ = ["IdempotencyConflict", "Output", "OutputKind", "Plan", "Result", "TensorSpec", "load", "signature"]
