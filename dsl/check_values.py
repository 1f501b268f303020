"""Checks of literal values: counts, durations, probabilities, shapes and source paths."""

from __future__ import annotations

import math
import re

from planc.dsl import ast as A
from planc.dsl.diagnostics import Diagnostic, did_you_mean
from planc.runtime.contract.targets import Target

__all__ = [
    "DECISIONS",
    "FAILURE_ACTIONS",
    "MAX_COUNT",
    "MAX_DIM",
    "MAX_RETRY",
    "MAX_SECONDS",
    "MODEL_KINDS",
    "OBJECTIVES",
    "TARGETS",
    "TOOL_KINDS",
    "clause_values",
    "count",
    "duration",
    "model",
    "one_of",
    "seconds",
    "tensor_type",
    "tool",
]

# riscv64-rvv is compiled and loaded only (docs/targets.md): a plan does not name it.
TARGETS = tuple(t.value for t in Target if t is not Target.RISCV64_RVV)
OBJECTIVES = ("latency", "throughput", "energy")
MODEL_KINDS = ("jax", "mlir", "onnx")
TOOL_KINDS = ("exec", "python")
FAILURE_ACTIONS = ("skip", "fail", "use")
DECISIONS = ("approve", "reject")

MAX_RETRY = 1000
MAX_COUNT = 1_000_000  # loop iterations, breaker failures
MAX_SECONDS = 365 * 24 * 3600.0  # no policy waits longer than a year
MAX_DIM = 2**31 - 1
_MAX_ELEMENTS = 2**48
_FUNC_SOURCE = re.compile(r"(?P<file>[^:]+\.py):(?P<func>[A-Za-z_]\w*(\.[A-Za-z_]\w*)*)\Z")
_WEIGHT_SUFFIXES = (".npz", ".safetensors")


def seconds(d: A.Duration) -> float:
    """A duration in seconds; inf where it does not fit a float (never OverflowError)."""
    try:
        return float(d.value) * A.DURATION_UNITS[d.unit]
    except (OverflowError, KeyError):
        return math.inf


def duration(d: A.Duration, what: str, *, allow_zero: bool) -> list[Diagnostic]:
    """A duration must be finite, at most a year, and non-zero where zero makes no sense."""
    s = seconds(d)
    if not s <= MAX_SECONDS:
        return [Diagnostic.error("E0203", f"{what} of {d} is too long", d.span,
                                 label="longer than a year", help="durations are at most 365 days")]
    if s < 0 or (s == 0 and not allow_zero):
        return [Diagnostic.error("E0203", f"{what} of {d} must be longer than zero", d.span,
                                 label="zero duration")]
    return []


def count(value: int, span: A.Span, what: str, lo: int, hi: int) -> list[Diagnostic]:
    if value < lo:
        return [Diagnostic.error("E0201", f"{what} must be at least {lo}, got {value}", span,
                                 label=f"less than {lo}")]
    if value > hi:
        return [Diagnostic.error("E0201", f"{what} of {value} is absurdly large", span,
                                 label=f"at most {hi}")]
    return []


def one_of(ident: A.Ident, allowed: tuple[str, ...], code: str, what: str) -> list[Diagnostic]:
    """`ident` must be one of `allowed`; otherwise an error that lists them or suggests one."""
    if ident.name in allowed:
        return []
    return [Diagnostic.error(code, f"unknown {what} '{ident.name}'", ident.span,
                             label=f"expected one of: {', '.join(allowed)}",
                             help=did_you_mean(ident.name, allowed))]


def tensor_type(t: A.TensorType) -> list[Diagnostic]:
    """Shapes hold positive dimensions; `f32[]` (a scalar) is fine."""
    if any(d == 0 for d in t.shape):
        return [Diagnostic.error("E0202", f"tensor type {t} has a zero dimension", t.span,
                                 label="dimensions must be at least 1",
                                 help="a scalar is written with an empty shape, e.g. f32[]")]
    if any(d > MAX_DIM for d in t.shape) or math.prod(t.shape) > _MAX_ELEMENTS:
        return [Diagnostic.error("E0202", "tensor type is too large", t.span,
                                 label=f"at most {MAX_DIM} per dimension and 2^48 elements")]
    return []


def _func_source(src: A.String, kind: str) -> list[Diagnostic]:
    if _FUNC_SOURCE.match(src.value):
        return []
    return [Diagnostic.error("E0117", f"malformed {kind} source \"{src.value}\"", src.span,
                             label="expected \"file.py:function\"",
                             help=f"a {kind} source names a Python file and a function in it, "
                                  f"e.g. \"models.py:{'detector' if kind == 'jax' else 'notify'}\"")]


def _path(src: A.String, kind: str, suffix: str = "") -> list[Diagnostic]:
    v = src.value
    bad = (not v.strip() or v != v.strip() or v.endswith("/") or "\0" in v
           or (suffix and not v.endswith(suffix)))
    if bad:
        want = f"a path to a {suffix} file" if suffix else "a path to a program"
        return [Diagnostic.error("E0117", f"malformed {kind} path \"{v}\"", src.span,
                                 label=f"expected {want}")]
    if kind == "exec" and _FUNC_SOURCE.match(v):
        return [Diagnostic.error("E0117", f"exec takes a program path, not \"{v}\"", src.span,
                                 label="this names a Python function",
                                 help=f"write: python \"{v}\"")]
    return []


def model(m: A.Model) -> list[Diagnostic]:
    out = one_of(m.kind, MODEL_KINDS, "E0107", "model kind")
    if m.kind.name == "jax":
        out += _func_source(m.source, "jax")
    elif m.kind.name in ("mlir", "onnx"):
        out += _path(m.source, m.kind.name, "." + m.kind.name)
        if m.weights is not None:
            inside = "the StableHLO module" if m.kind.name == "mlir" else "the ONNX file or its external data"
            out.append(Diagnostic.error("E0109", f"an {m.kind.name} model takes no weights file", m.weights.span,
                                        label=f"weights belong in {inside}",
                                        help="weights files are for jax models"))
    if m.weights is not None and not m.weights.value.endswith(_WEIGHT_SUFFIXES):
        out.append(Diagnostic.error("E0117", f"malformed weights path \"{m.weights.value}\"",
                                    m.weights.span, label="expected a .npz or .safetensors file"))
    return out


def tool(t: A.Tool) -> list[Diagnostic]:
    out = one_of(t.kind, TOOL_KINDS, "E0107", "tool kind")
    if t.kind.name == "python":
        out += _func_source(t.source, "python")
    elif t.kind.name == "exec":
        out += _path(t.source, "exec")
    if t.returns is not None:
        out += tensor_type(t.returns)
    return out


def _on_failure(c: A.OnFailure) -> list[Diagnostic]:
    out = one_of(c.action, FAILURE_ACTIONS, "E0108", "failure action")
    if c.action.name == "use" and c.fallback is None:
        out.append(Diagnostic.error("E0116", "'on failure use' needs a value to use instead", c.span,
                                    label="missing value", help="write: on failure use NAME"))
    elif c.action.name in ("skip", "fail") and c.fallback is not None:
        out.append(Diagnostic.error("E0116", f"'on failure {c.action.name}' takes no value",
                                    c.fallback.span, label="unexpected value",
                                    help=f"write 'on failure use {c.fallback.name}' to fall back to it"))
    return out


def clause_values(c: A.Clause) -> list[Diagnostic]:
    """The values inside one clause (names are resolved elsewhere)."""
    if isinstance(c, A.Retry):
        return count(c.count, c.span, "retry count", 0, MAX_RETRY)
    if isinstance(c, A.Backoff):
        out = duration(c.low, "backoff", allow_zero=True) + duration(c.high, "backoff", allow_zero=True)
        if not out and seconds(c.low) > seconds(c.high):
            out.append(Diagnostic.error("E0204", f"backoff range {c.low}..{c.high} is reversed", c.span,
                                        label="the lower bound is above the upper",
                                        help=f"write: backoff {c.high}..{c.low}"))
        return out
    if isinstance(c, A.Timeout):
        return duration(c.duration, "timeout", allow_zero=False)
    if isinstance(c, A.Breaker):
        return (count(c.failures, c.span, "breaker failure count", 1, MAX_COUNT)
                + duration(c.window, "breaker window", allow_zero=False))
    if isinstance(c, A.Cost):
        return duration(c.duration, "cost", allow_zero=True)
    if isinstance(c, A.OnFailure):
        return _on_failure(c)
    if isinstance(c, A.Prob):
        v = c.value.value
        if not 0 <= v <= 1:
            return [Diagnostic.error("E0205", f"probability {v} is not between 0 and 1", c.value.span,
                                     label="expected a value in [0, 1]")]
        return []
    if isinstance(c, A.Default):
        return one_of(c.decision, DECISIONS, "E0108", "gate decision")
    return []
