"""Which compute tasks merge into one module: the merge DP, its order search and its solver."""
