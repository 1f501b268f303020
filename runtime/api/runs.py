"""What the CLI and the server set up around a run: bundle, host, run config, gate sources, journal, status."""

from planc.runtime.bundle.loader import Bundle, load_bundle
from planc.runtime.bundle.summary import format_summary, summarize
from planc.runtime.engine.choice import known_choice
from planc.runtime.engine.executor import RunStatus
from planc.runtime.engine.remote import ENGINES
from planc.runtime.engine.runner import RunConfig
from planc.runtime.gates.keeper import AuditLog, AutoApprove, DecisionsDir, Interactive
from planc.runtime.host.detect import Host, choose_variant, describe, detect
from planc.runtime.journal.rundir import RunDir
from planc.runtime.tools.breaker import BreakerState

__all__ = [
    "ENGINES",
    "AuditLog",
    "AutoApprove",
    "BreakerState",
    "Bundle",
    "DecisionsDir",
    "Host",
    "Interactive",
    "RunConfig",
    "RunDir",
    "RunStatus",
    "choose_variant",
    "describe",
    "detect",
    "format_summary",
    "known_choice",
    "load_bundle",
    "summarize",
]
