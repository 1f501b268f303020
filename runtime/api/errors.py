"""The errors a caller of the runtime catches, named in one place (serve/ and commands/ import them here)."""

from planc.runtime.api.gates import UnknownGate
from planc.runtime.api.plan import IdempotencyConflict
from planc.runtime.bundle.loader import BundleError
from planc.runtime.engine.modules import ModuleError
from planc.runtime.engine.runner import InputError
from planc.runtime.gates.keeper import GateError
from planc.runtime.host.detect import HostSpecError, NoVariantError
from planc.runtime.journal.runstate import JournalError
from planc.runtime.ray.cluster import ClusterError

__all__ = [
    "BundleError",
    "ClusterError",
    "GateError",
    "HostSpecError",
    "IdempotencyConflict",
    "InputError",
    "JournalError",
    "ModuleError",
    "NoVariantError",
    "UnknownGate",
]
