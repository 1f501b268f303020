"""planc: an ahead-of-time plan optimizer (planc.dsl, planc.compiler, planc.runtime)."""

__version__ = "0.1.0"
