"""planrt: the minimal runtime (iree.runtime + numpy + stdlib only)."""
