"""Lowering merged groups to StableHLO and compiling them with IREE."""
