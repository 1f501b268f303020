"""The local engine: Runner (load a bundle, run, resume), the task lists prepared at load, the dataflow
executor, IREE modules, input checks, run-time values, guard expressions, run state and the injected clock."""
