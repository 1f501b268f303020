"""Lowering JAX functions to StableHLO text, normalizing it, and reading its entry signature."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from planc.runtime.contract.dtypes import DType, dtype_of_mlir, dtype_of_numpy

__all__ = [
    "DTYPES",
    "ArgType",
    "CostFacts",
    "StableHLOError",
    "TypeSig",
    "cost_facts",
    "export_stablehlo",
    "mlir_signature",
    "normalize",
    "strip_debuginfo",
]

log = logging.getLogger(__name__)

# An argument type: a (shape, dtype) pair with dtype a planc name ("f32") or a numpy/jax
# dtype, or anything with `.shape` and `.dtype` (jax.ShapeDtypeStruct, numpy arrays, and
# planc.dsl.ast.TensorType, whose dtype is a DType enum).
ArgType = Any
TypeSig = tuple[str, tuple[int, ...]]  # ("f32", (1, 64, 64, 3))

# planc dtype name -> numpy dtype name (bf16 via ml_dtypes, which jax ships).
DTYPES = {d.value: d.numpy for d in DType}
_MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$.]*\Z")


class StableHLOError(ValueError):
    """StableHLO text that cannot be parsed, has no `main`, or uses a type planc lacks."""


class CostFacts(NamedTuple):
    flops: float
    bytes_accessed: float


def _dtype_name(dtype: Any) -> str:
    value = getattr(dtype, "value", dtype)  # planc DType enum
    if isinstance(value, str) and value in DTYPES:
        return value
    import numpy as np

    try:
        np_name = np.dtype(value).name
    except TypeError as e:
        raise ValueError(f"unknown dtype {dtype!r}, expected one of: {', '.join(DTYPES)}") from e
    found = dtype_of_numpy(np_name)
    if found is None:
        raise ValueError(f"unsupported dtype {np_name}, expected one of: {', '.join(DTYPES)}")
    return found.value


def _as_sig(arg: ArgType) -> TypeSig:
    if hasattr(arg, "shape") and hasattr(arg, "dtype"):
        shape, dtype = arg.shape, arg.dtype
    else:
        shape, dtype = arg
    return _dtype_name(dtype), tuple(int(d) for d in shape)


def _specs(arg_types: Sequence[ArgType]) -> tuple[list[Any], bool]:
    import jax
    import jax.numpy as jnp

    sigs = [_as_sig(a) for a in arg_types]
    specs = [jax.ShapeDtypeStruct(shape, jnp.dtype(DTYPES[dt])) for dt, shape in sigs]
    return specs, any(dt == "i64" for dt, _ in sigs)


def _lower(fn: Callable[..., Any], arg_types: Sequence[ArgType], *, name: str = "") -> Any:

    specs, needs_x64 = _specs(arg_types)  # bad types raise ValueError here, before tracing
    try:
        return _trace(fn, specs, needs_x64)
    except Exception as e:  # the user's function may raise anything while tracing
        what = getattr(fn, "__qualname__", repr(fn))
        where = f" for module '{name}'" if name else ""
        raise StableHLOError(f"tracing '{what}'{where} failed: {type(e).__name__}: {e}") from e


def _trace(fn: Callable[..., Any], specs: list[Any], needs_x64: bool) -> Any:
    import jax

    # i64 inputs exist only with x64 on; otherwise JAX silently narrows them to i32.
    # keep_unused: the entry signature must match the declared inputs even if one is unused.
    # A fixed lowering platform keeps the text independent of the build machine's devices.
    with jax.enable_x64(needs_x64):
        traced = jax.jit(fn, keep_unused=True).trace(*specs)
        return traced.lower(lowering_platforms=("cpu",))


def export_stablehlo(fn: Callable[..., Any], arg_types: Sequence[ArgType], *, name: str) -> str:
    """Traces `fn` with the given input types and returns its StableHLO module as text.

    The entry function is `main`, the module is named `name` (IREE's VM module name),
    and debug info is stripped, so the text depends only on the computation, never on
    the path of the file `fn` was defined in.
    """
    lowered = _lower(fn, arg_types, name=name)
    return normalize(lowered.as_text(), name=name)


def _parse(text: str, ctx: Any) -> Any:
    from iree.compiler import ir

    try:
        return ir.Module.parse(text, ctx)
    except ir.MLIRError as e:
        raise StableHLOError(f"invalid MLIR: {e}") from None


def normalize(text: str, *, name: str | None = None) -> str:
    """Parses MLIR text, strips all debug info (locations) and optionally renames the module."""
    from iree.compiler import ir, passmanager

    if name is not None and not _MODULE_NAME.match(name):
        raise ValueError(f"invalid module name {name!r}: expected a letter or '_' then letters, digits, '_'")
    with ir.Context() as ctx:
        module = _parse(text, ctx)
        passmanager.PassManager.parse("builtin.module(strip-debuginfo)").run(module.operation)
        if name is not None:
            module.operation.attributes["sym_name"] = ir.StringAttr.get(name)
        return module.operation.get_asm(enable_debug_info=False)


def strip_debuginfo(text: str) -> str:
    """The same module without locations (file paths, line numbers, op names from JAX)."""
    return normalize(text)


def _type_sig(t: Any, where: str) -> TypeSig:
    from iree.compiler import ir

    if not isinstance(t, ir.RankedTensorType):
        raise StableHLOError(f"{where} has type {t}, expected a statically shaped tensor")
    rt = t
    if not rt.has_static_shape:
        raise StableHLOError(f"{where} has dynamic shape {t}, expected a static shape")
    elem = str(rt.element_type)
    found = dtype_of_mlir(elem)
    if found is None:
        raise StableHLOError(
            f"{where} has element type {elem}, expected one of: {', '.join(d.info.mlir for d in DType)}"
        )
    return found.value, tuple(int(d) for d in rt.shape)


def _find_main(module: Any) -> Any:
    from iree.compiler import ir

    for op in module.body.operations:
        is_func = op.operation.name == "func.func" and "sym_name" in op.attributes
        if is_func and ir.StringAttr(op.attributes["sym_name"]).value == "main":
            return op
    raise StableHLOError("no entry function: expected a func.func named @main")


def mlir_signature(text: str) -> tuple[tuple[TypeSig, ...], tuple[TypeSig, ...]]:
    """The input and output types of the entry function `main`, as (dtype, shape) pairs."""
    from iree.compiler import ir

    with ir.Context() as ctx:
        main = _find_main(_parse(text, ctx))
        ftype = ir.FunctionType(ir.TypeAttr(main.attributes["function_type"]).value)
        inputs = tuple(_type_sig(t, f"@main argument {i}") for i, t in enumerate(ftype.inputs))
        outputs = tuple(_type_sig(t, f"@main result {i}") for i, t in enumerate(ftype.results))
    return inputs, outputs


def _first(analysis: Any) -> dict[str, Any] | None:
    # Older JAX returned a list with one dict per computation; newer returns the dict.
    if isinstance(analysis, (list, tuple)):
        analysis = analysis[0] if analysis else None
    return analysis if isinstance(analysis, dict) else None


def cost_facts(fn: Callable[..., Any], arg_types: Sequence[ArgType], *, fused: bool = True) -> CostFacts:
    """FLOPs and bytes accessed of `fn` from XLA's cost analysis.

    With `fused` (the default) the numbers come from the compiled executable, after XLA
    fuses elementwise ops into their producers, which is closer to the traffic of IREE's
    fused dispatches; otherwise from the unoptimized HLO (cheaper, counts every
    intermediate). Falls back to the other when one is missing; a missing key counts 0.
    """
    lowered = _lower(fn, arg_types)
    sources = (lambda: lowered.compile().cost_analysis(), lowered.cost_analysis)
    if not fused:
        sources = sources[::-1]
    for source in sources:
        try:
            analysis = _first(source())
        except Exception as e:  # noqa: BLE001 - XLA raises assorted errors here
            log.debug("cost analysis failed: %s", e)
            continue
        if analysis and ("flops" in analysis or "bytes accessed" in analysis):
            flops = max(0.0, float(analysis.get("flops", 0.0)))
            nbytes = max(0.0, float(analysis.get("bytes accessed", 0.0)))
            return CostFacts(flops, nbytes)
    log.warning("JAX cost analysis unavailable; using flops=0 and the argument/result bytes")
    return CostFacts(0.0, float(_io_bytes(lowered)))


def _io_bytes(lowered: Any) -> int:
    import numpy as np

    total = 0
    for leaf in [*_leaves(lowered.in_avals), *_leaves(lowered.out_info)]:
        total += int(np.prod(leaf.shape, dtype=np.int64)) * np.dtype(leaf.dtype).itemsize
    return total


def _leaves(tree: Any) -> list[Any]:
    import jax

    return [leaf for leaf in jax.tree_util.tree_leaves(tree) if hasattr(leaf, "shape")]
