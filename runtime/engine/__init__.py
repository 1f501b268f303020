"""The local engine: Runner (load a bundle, run, resume), the dataflow executor, IREE modules,
run-time values, guard expressions, run state and the injected clock."""
