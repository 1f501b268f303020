"""Python tools of the agent example (called by planrt with JSON-able arguments)."""

import math


def lookup_customer(emb, source, *, idempotency_key=None):
    """Pretend CRM lookup: a deterministic customer vector derived from the embedding."""
    row = emb[0]
    return [[math.tanh(v * 2.0 + (0.1 if source == "crm" else 0.0)) for v in row]]


def escalate(quality, urgency, *, idempotency_key=None):
    return {"paged": True, "quality": quality, "urgency": urgency}
