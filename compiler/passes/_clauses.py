"""Reads the clauses after a task, gate or loop into guard, ordering and a tool's Policy (for build)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from planc.compiler.ir.graph import FailureAction, GateDefault, Policy, ValueRef
from planc.dsl import ast as A
from planc.dsl.diagnostics import Diagnostic

__all__ = ["ClauseReader", "Clauses"]

_ALLOWED: dict[str, tuple[type, ...]] = {
    "model": (A.When, A.Prob, A.After),
    "builtin": (A.When, A.Prob, A.After),
    "loop": (A.When, A.Prob, A.After),
    "gate": (A.When, A.Prob, A.After, A.Timeout, A.Default),
    "tool": (A.When, A.Prob, A.After, A.Retry, A.Backoff, A.Timeout, A.Breaker, A.OnFailure, A.Cost),
}
_WORDS = {A.When: "when", A.Prob: "prob", A.After: "after", A.Timeout: "timeout", A.Default: "default",
          A.Retry: "retry", A.Backoff: "backoff", A.Breaker: "breaker", A.OnFailure: "on failure",
          A.Cost: "cost"}


@dataclass
class Clauses:
    guard: A.Expr | None = None
    prob: float | None = None
    after: tuple[A.Ident, ...] = ()
    timeout: float | None = None
    default: GateDefault | None = None
    retry: int = 0
    backoff: tuple[float, float] | None = None
    breaker: tuple[int, float] | None = None
    on_failure: FailureAction = FailureAction.FAIL
    fallback: ValueRef | None = None
    cost: float | None = None
    seen: dict[type, A.Span] = field(default_factory=dict)

    def policy(self) -> Policy:
        return Policy(self.retry, self.backoff, self.timeout, self.breaker, self.on_failure,
                      self.fallback, self.cost)


class ClauseReader:
    """Turns clauses into values, appending a Diagnostic for each misplaced or bad one."""

    def __init__(self, diags: list[Diagnostic]) -> None:
        self.diags = diags

    def read(self, clauses: tuple[A.Clause, ...], kind: str,
             resolve: Callable[[A.Ident], ValueRef]) -> Clauses:
        out = Clauses()
        allowed = _ALLOWED[kind]
        for c in clauses:
            word, span = _WORDS[type(c)], c.span
            if not isinstance(c, allowed):
                ok = ", ".join(_WORDS[t] for t in allowed)
                self._error("E0109", f"`{word}` is not allowed on a {kind} task" if kind != "gate"
                            else f"`{word}` is not allowed on a gate", span,
                            help=f"allowed here: {ok}")
                continue
            if type(c) in out.seen:
                self.diags.append(Diagnostic.error("E0110", f"`{word}` given twice", span,
                                                   notes=(("first given here", out.seen[type(c)]),)))
                continue
            out.seen[type(c)] = span
            self._apply(c, out, resolve)
        return out

    def _error(self, code: str, message: str, span: A.Span, **kw: object) -> None:
        self.diags.append(Diagnostic.error(code, message, span, **kw))  # type: ignore[arg-type]

    def _apply(self, c: A.Clause, out: Clauses, resolve: Callable[[A.Ident], ValueRef]) -> None:
        if isinstance(c, A.When):
            out.guard = c.expr
        elif isinstance(c, A.Prob):
            out.prob = float(c.value.value)
            if not 0.0 <= out.prob <= 1.0:
                self._error("E0205", f"probability {c.value.value} is not between 0 and 1", c.value.span)
        elif isinstance(c, A.After):
            out.after = c.names
        elif isinstance(c, A.Timeout):
            out.timeout = c.duration.seconds
        elif isinstance(c, A.Default):
            try:
                out.default = GateDefault.parse(c.decision.name)
            except ValueError as e:
                self._error("E0108", f"unknown gate default '{c.decision.name}'", c.decision.span, help=str(e))
        elif isinstance(c, A.Retry):
            out.retry = c.count
        elif isinstance(c, A.Backoff):
            out.backoff = (c.low.seconds, c.high.seconds)
            if c.low.seconds > c.high.seconds:
                self._error("E0204", f"backoff {c.low}..{c.high} runs backwards", c.span,
                            help=f"write backoff {c.high}..{c.low}")
        elif isinstance(c, A.Breaker):
            out.breaker = (c.failures, c.window.seconds)
            if c.failures < 1:
                self._error("E0201", "a breaker needs at least 1 failure to open", c.span)
        elif isinstance(c, A.Cost):
            out.cost = c.duration.seconds
        elif isinstance(c, A.OnFailure):
            self._on_failure(c, out, resolve)

    def _on_failure(self, c: A.OnFailure, out: Clauses, resolve: Callable[[A.Ident], ValueRef]) -> None:
        try:
            out.on_failure = FailureAction.parse(c.action.name)
        except ValueError as e:
            self._error("E0108", f"unknown failure action '{c.action.name}'", c.action.span, help=str(e))
            return
        if out.on_failure is FailureAction.USE:
            if c.fallback is None:
                self._error("E0108", "`on failure use` needs a value", c.span, help="write `on failure use OTHER`")
            else:
                out.fallback = resolve(c.fallback)
        elif c.fallback is not None:
            self._error("E0108", f"`on failure {c.action.name}` takes no value", c.fallback.span,
                        help=f"only `on failure use {c.fallback.name}` names a value")
