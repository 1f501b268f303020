"""A plan's models for the compiler: JAX functions and StableHLO files, and the JAX reference run."""
