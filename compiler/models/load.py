"""Loads a plan's models for the compiler: JAX functions from .py files (weights bound) and StableHLO signatures.

Loading never leaves state behind in the interpreter: a model file is imported under a
private module name with the plan's directory on sys.path only while it runs, and
sibling modules it imported are removed from sys.modules afterwards. Results are
memoized in a ModelCache keyed by absolute path, mtime and size (a changed file is
reloaded), and traces by (model, argument types), so 10k tasks sharing a few models
trace each model once per signature.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import inspect
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from planc.compiler.ir.graph import CostFacts, ModelDecl, ModelKind
from planc.dsl.ast import DType, TensorType
from planc.dsl.diagnostics import did_you_mean
from planc.runtime.contract.dtypes import dtype_of_numpy

__all__ = [
    "LoadedModel",
    "ModelCache",
    "ModelError",
    "load_jax_model",
    "load_mlir_model",
    "load_model",
    "python_error",
    "shared_cache",
]

_FileKey = tuple[str, int, int]


class ModelError(Exception):
    """A model that cannot be loaded, traced or called with these types.

    `code` is the diagnostic code; `where` says which span the message belongs to:
    "model" (the declaration), "weights" (its weights file), "task" (the calling task)
    or "arg" (argument `arg` of the calling task)."""

    def __init__(self, code: str, message: str, where: str = "model", arg: int | None = None,
                 help: str = "") -> None:
        super().__init__(message)
        self.code, self.message, self.where, self.arg, self.help = code, message, where, arg, help


@dataclass(frozen=True)
class LoadedModel:
    """A model bound to argument types. `fn(*arrays)` calls a JAX model with its weights
    bound as constants (None for mlir models); `results` are its output types."""

    decl: ModelDecl
    arg_types: tuple[TensorType, ...]
    results: tuple[TensorType, ...]
    tuple_result: bool
    fn: Callable[..., Any] | None = field(default=None, compare=False)
    facts: CostFacts | None = None


@dataclass
class ModelCache:
    """Memo tables for loaded modules, weights and traces. `traces=False` re-traces every
    call (the baseline the benchmark compares against)."""

    traces: bool = True
    modules: dict[_FileKey, ModuleType | ModelError] = field(default_factory=dict)
    weights: dict[_FileKey, dict[str, np.ndarray] | ModelError] = field(default_factory=dict)
    loaded: dict[tuple, LoadedModel | ModelError] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)


_SHARED = ModelCache()


def shared_cache() -> ModelCache:
    """The process-wide cache used when none is passed (memoizes file contents only)."""
    return _SHARED


def python_error(e: BaseException) -> str:
    """The last line of a Python error, as a user should see it (no traceback)."""
    if isinstance(e, SyntaxError):
        where = f" ({Path(e.filename).name}, line {e.lineno})" if e.filename else ""
        return f"SyntaxError: {e.msg}{where}"
    lines = [ln for ln in str(e).splitlines() if ln.strip()]
    text = f"{type(e).__name__}: {lines[0].strip()}" if lines else type(e).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _file_key(path: Path, what: str, code: str, where: str) -> _FileKey:
    try:
        st = path.stat()
    except OSError:
        raise ModelError(code, f"{what} '{path.name}' not found at {path}", where) from None
    if not path.is_file():
        raise ModelError(code, f"{what} '{path}' is not a file", where)
    return (str(path), st.st_mtime_ns, st.st_size)


def _memo(table: dict, key: Any, make: Callable[[], Any]) -> Any:
    if key not in table:
        try:
            table[key] = make()
        except ModelError as e:
            table[key] = e
    value = table[key]
    if isinstance(value, ModelError):
        raise value
    return value


# -- JAX models ----------------------------------------------------------------------------
def _import(path: Path) -> ModuleType:
    name = "_planc_model_" + hashlib.sha1(str(path).encode()).hexdigest()[:16]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ModelError("E0302", f"cannot import '{path.name}': not a Python file")
    module = importlib.util.module_from_spec(spec)
    before, saved_path = set(sys.modules), list(sys.path)
    sys.path.insert(0, str(path.parent))
    sys.modules[name] = module  # some code (dataclasses, typing) looks itself up while importing
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # noqa: BLE001 - any error in user code becomes a diagnostic
        raise ModelError("E0302", f"cannot import '{path.name}': {python_error(e)}") from None
    finally:
        sys.path[:] = saved_path
        for added in set(sys.modules) - before:
            origin = getattr(sys.modules[added], "__file__", None) or ""
            if added == name or Path(origin).parent == path.parent:
                del sys.modules[added]  # sibling modules of one plan must not leak into the next
    return module


def _function(decl: ModelDecl, cache: ModelCache) -> Callable[..., Any]:
    key = _file_key(decl.path, "model file", "E0302", "model")
    module = _memo(cache.modules, key, lambda: _import(decl.path))
    fn = getattr(module, decl.function, None)
    if fn is None or not callable(fn):
        names = [n for n, v in vars(module).items() if callable(v) and not n.startswith("_")]
        hint = did_you_mean(decl.function, names)
        what = "no function" if fn is None else "a non-callable"
        raise ModelError("E0302", f"'{decl.path.name}' has {what} '{decl.function}'", help=hint)
    return fn  # type: ignore[no-any-return]


def _load_weights(path: Path) -> dict[str, np.ndarray]:
    suffix = path.suffix.lower()
    try:
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        if suffix == ".safetensors":
            from safetensors.numpy import load_file

            return dict(load_file(str(path)))
    except Exception as e:  # noqa: BLE001 - corrupt files raise many kinds of error
        raise ModelError("E0307", f"cannot load weights '{path.name}': {python_error(e)}", "weights") from None
    raise ModelError("E0307", f"weights '{path.name}' have an unknown format '{suffix}'", "weights",
                     help="use a .npz or .safetensors file")


def _params(decl: ModelDecl, cache: ModelCache) -> dict[str, np.ndarray] | None:
    if decl.weights is None:
        return None
    key = _file_key(decl.weights, "weights file", "E0307", "weights")
    return _memo(cache.weights, key, lambda: _load_weights(decl.weights))  # type: ignore[arg-type]


def _check_arity(fn: Callable[..., Any], decl: ModelDecl, n_args: int, with_params: bool) -> None:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return
    lead = [None] if with_params else []
    try:
        sig.bind(*lead, *([None] * n_args))
    except TypeError:
        params = [p for p in sig.parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        takes = len(params) - len(lead)
        how = f"{decl.function}(params, ...)" if with_params else f"{decl.function}(...)"
        raise ModelError("E0111", f"model '{decl.name}' takes {takes} input{'s' * (takes != 1)}, "
                         f"the task passes {n_args}", "task",
                         help=f"with{'' if with_params else 'out'} weights it is called as {how}") from None


def _tensor_type(leaf: Any, decl: ModelDecl) -> TensorType:
    name = np.dtype(leaf.dtype).name
    dtype = dtype_of_numpy(name)
    if dtype is None or not all(isinstance(d, int) for d in leaf.shape):
        raise ModelError("E0304", f"model '{decl.name}' returns {name}{list(leaf.shape)}, which planc does not "
                         f"support", help=f"return one of: {', '.join(d.value for d in DType)}")
    return TensorType(dtype, tuple(int(d) for d in leaf.shape))


def _results(out: Any, decl: ModelDecl) -> tuple[tuple[TensorType, ...], bool]:
    if hasattr(out, "shape") and hasattr(out, "dtype"):
        return (_tensor_type(out, decl),), False
    if isinstance(out, (tuple, list)) and out and all(hasattr(o, "shape") for o in out):
        return tuple(_tensor_type(o, decl) for o in out), True
    raise ModelError("E0304", f"model '{decl.name}' returns {type(out).__name__}, not an array or a tuple of "
                     "arrays", help="return one array, or a tuple of arrays")


def _specs(arg_types: Sequence[TensorType]) -> list[Any]:
    import jax
    import jax.numpy as jnp

    return [jax.ShapeDtypeStruct(t.shape, jnp.dtype(_jnp_name(t.dtype))) for t in arg_types]


def _jnp_name(d: DType) -> str:
    return d.numpy


def _trace(decl: ModelDecl, arg_types: tuple[TensorType, ...], cache: ModelCache, facts: bool) -> LoadedModel:
    import jax

    func = _function(decl, cache)
    params = _params(decl, cache)
    _check_arity(func, decl, len(arg_types), params is not None)
    fn = functools.partial(func, params) if params is not None else func
    x64 = any(t.dtype is DType.I64 for t in arg_types)  # else JAX narrows i64 to i32
    try:
        with jax.enable_x64(x64):
            out = jax.eval_shape(fn, *_specs(arg_types))
    except Exception as e:  # noqa: BLE001 - user code raises anything while tracing
        sig = ", ".join(map(str, arg_types))
        raise ModelError("E0303", f"model '{decl.name}' cannot be traced with ({sig}): {python_error(e)}") from None
    results, is_tuple = _results(out, decl)
    cost = _cost(fn, arg_types) if facts else None
    return LoadedModel(decl, arg_types, results, is_tuple, fn, cost)


def _cost(fn: Callable[..., Any], arg_types: tuple[TensorType, ...]) -> CostFacts:
    from planc.compiler.hlo.stablehlo import export_stablehlo

    # Counted from the StableHLO, op by op, as an mlir model's are: the same function costs
    # the same whichever way it is declared.
    return _counted(export_stablehlo(fn, arg_types, name="model"))


def _counted(text: str) -> CostFacts:
    from planc.compiler.hlo.counts import count_stablehlo

    c = count_stablehlo(text)
    return CostFacts(c.flops, c.bytes_accessed, c.dispatches, c.working_set, c.vector_flops)


def load_jax_model(decl: ModelDecl, arg_types: Sequence[TensorType], *, cache: ModelCache | None = None,
                   facts: bool = True) -> LoadedModel:
    """Imports, binds weights and traces a jax model for these argument types.

    Raises ModelError (E0302 import, E0303 trace, E0304 result types, E0307 weights,
    E0111 arity). Cached per (file, function, weights, argument types) unless the
    cache has `traces=False`.
    """
    cache = cache or _SHARED
    types = tuple(arg_types)
    with cache.lock:
        if not cache.traces:
            return _trace(decl, types, cache, facts)
        key = (decl.path, decl.function, decl.weights, types, facts, _mtime(decl.path), _mtime(decl.weights))
        return _memo(cache.loaded, key, lambda: _trace(decl, types, cache, facts))  # type: ignore[no-any-return]


def _mtime(path: Path | None) -> int:
    try:
        return path.stat().st_mtime_ns if path is not None else 0
    except OSError:
        return -1


# -- MLIR models ---------------------------------------------------------------------------
def _mlir_signature(decl: ModelDecl) -> tuple[tuple[TensorType, ...], tuple[TensorType, ...]]:
    from planc.compiler.hlo.stablehlo import StableHLOError, mlir_signature

    _file_key(decl.path, "model file", "E0302", "model")
    try:
        text = decl.path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ModelError("E0302", f"cannot read '{decl.path.name}': {python_error(e)}") from None
    try:
        ins, outs = mlir_signature(text)
    except StableHLOError as e:
        msg = "; ".join(ln.strip() for ln in str(e).splitlines() if ln.strip()).replace('"-":', f"{decl.path.name}:")
        code = "E0302" if msg.startswith("invalid MLIR") else "E0304"
        raise ModelError(code, f"'{decl.path.name}': {msg}") from None
    as_type = lambda s: TensorType(DType.parse(s[0]), tuple(s[1]))
    return tuple(map(as_type, ins)), tuple(map(as_type, outs))


def _mlir_model(decl: ModelDecl, facts: bool
                ) -> tuple[tuple[TensorType, ...], tuple[TensorType, ...], CostFacts | None]:
    ins, outs = _mlir_signature(decl)
    return ins, outs, _counted(decl.path.read_text(encoding="utf-8")) if facts else None


def load_mlir_model(decl: ModelDecl, arg_types: Sequence[TensorType], *,
                    cache: ModelCache | None = None, facts: bool = True) -> LoadedModel:
    """Reads the entry function's signature and checks the arguments against it.

    Cost facts are counted from the StableHLO op by op (hlo.counts), as a jax
    model's are; `facts=False` leaves them None.
    """
    cache = cache or _SHARED
    types = tuple(arg_types)
    with cache.lock:
        key = _file_key(decl.path, "model file", "E0302", "model")
        ins, outs, counted = _memo(cache.loaded, ("mlir", key, facts), lambda: _mlir_model(decl, facts))
    if len(ins) != len(types):
        raise ModelError("E0111", f"model '{decl.name}' takes {len(ins)} input{'s' * (len(ins) != 1)}, "
                         f"the task passes {len(types)}", "task")
    for i, (want, got) in enumerate(zip(ins, types)):
        if want != got:
            raise ModelError("E0301", f"model '{decl.name}' expects {want} as input {i}, got {got}", "arg", i)
    return LoadedModel(decl, types, outs, len(outs) != 1, None, counted)


def load_model(decl: ModelDecl, arg_types: Sequence[TensorType], *, cache: ModelCache | None = None,
               facts: bool = True) -> LoadedModel:
    """load_jax_model or load_mlir_model, by the model's kind."""
    if decl.kind is ModelKind.MLIR:
        return load_mlir_model(decl, arg_types, cache=cache, facts=facts)
    return load_jax_model(decl, arg_types, cache=cache, facts=facts)
