"""StableHLO text: exported from JAX, parsed, and counted for cost facts."""
