"""The compiler: IR, passes, cost model, targets, codegen, bundle writer and the planc CLI."""
