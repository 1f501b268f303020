"""Human review gates: decision sources and the audit log."""
