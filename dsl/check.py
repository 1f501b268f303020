"""Name resolution and validation of a parsed module: every error of a file in one run."""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from dataclasses import dataclass

from planc.dsl import ast as A
from planc.dsl import check_values as V
from planc.dsl.check_graph import DepGraph
from planc.dsl.diagnostics import Diagnostic, did_you_mean

__all__ = ["check", "has_errors"]

_VALUE_KINDS = ("input", "task", "gate", "carry")
_ALLOWED: dict[str, tuple[type, ...]] = {
    "task": (A.When, A.Retry, A.Backoff, A.Timeout, A.Breaker, A.OnFailure, A.Cost, A.After, A.Prob),
    "gate": (A.When, A.Timeout, A.Default, A.After, A.Prob),
    "loop": (A.When, A.Timeout, A.After, A.Prob),
}
_KEYWORD = {A.When: "when", A.Retry: "retry", A.Backoff: "backoff", A.Timeout: "timeout",
            A.Breaker: "breaker", A.OnFailure: "on failure", A.Cost: "cost", A.After: "after",
            A.Prob: "prob", A.Default: "default"}
_MAX_SUGGESTIONS = 200  # did-you-mean is O(names); bound the cost on files full of errors


def check(module: A.Module) -> list[Diagnostic]:
    """All errors and warnings of a module, sorted by position; an empty list means clean."""
    diags: list[Diagnostic] = []
    if not module.plans:
        diags.append(Diagnostic.warning("W0004", "file has no plan", A.Span(module.file, 1, 1, 1, 1),
                                        help="a file holds one or more: plan NAME { ... }"))
    first: dict[str, A.Plan] = {}
    for plan in module.plans:
        if plan.name.name in first:
            diags.append(Diagnostic.error(
                "E0114", f"plan '{plan.name.name}' is defined twice", plan.name.span,
                label="second definition", notes=(("first defined here", first[plan.name.name].name.span),)))
        else:
            first[plan.name.name] = plan
        diags += _PlanCheck(plan).run()
    return sorted(diags, key=Diagnostic.sort_key)


def has_errors(diags: list[Diagnostic]) -> bool:
    return any(d.is_error for d in diags)


@dataclass(frozen=True, slots=True)
class _Decl:
    kind: str  # input | model | tool | task | gate | loop | carry
    ident: A.Ident
    node: object
    loop: A.Loop | None  # the loop whose body holds it


def _a(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


_refs = A.expr_refs


class _PlanCheck:
    """Checks one plan; `owner` is the dependency-graph node whose references are being resolved."""

    def __init__(self, plan: A.Plan):
        self.plan = plan
        self.diags: list[Diagnostic] = []
        self.decls: dict[str, _Decl] = {}
        self.used: set[str] = set()
        self.graph = DepGraph()
        self.suggestions = 0

    def run(self) -> list[Diagnostic]:
        self._declare()
        seen: dict[type, A.Stmt] = {}
        for stmt in self.plan.body:
            if isinstance(stmt, (A.Target, A.Objective)):
                if type(stmt) in seen:
                    kw = "target" if isinstance(stmt, A.Target) else "objective"
                    self._err("E0118", f"'{kw}' is given twice in plan '{self.plan.name.name}'", stmt.span,
                              label="second one", notes=((f"first '{kw}' here", seen[type(stmt)].span),),
                              help="list all targets in one 'target' statement" if kw == "target"
                              else "a plan has one objective")
                seen.setdefault(type(stmt), stmt)
            self._stmt(stmt)
        self._outputs()
        if not any(d.is_error for d in self.diags):  # after an error, 'unused' is mostly an echo
            self._unused()
        self.diags += self.graph.cycles()
        return self.diags

    # -- declarations --------------------------------------------------------------------------
    def _declare(self) -> None:
        for stmt in self.plan.body:
            if isinstance(stmt, (A.Input, A.Model, A.Tool, A.Task, A.Gate)):
                self._add(type(stmt).__name__.lower(), stmt.name, stmt, None)
            elif isinstance(stmt, A.Loop):
                self._add("loop", stmt.name, stmt, None)
                for inner in stmt.body:
                    self._add(type(inner).__name__.lower(), inner.name, inner, stmt)

    def _add(self, kind: str, ident: A.Ident, node: object, loop: A.Loop | None) -> None:
        first = self.decls.get(ident.name)
        if first is not None:
            self._err("E0102", f"'{ident.name}' is defined twice", ident.span,
                      label=f"{_a(kind)} named '{ident.name}' again",
                      notes=((f"first defined here as {_a(first.kind)}", first.ident.span),),
                      help="every input, model, tool, task, gate, loop and carry needs its own name")
            return
        if kind in ("model", "tool") and ident.name in A.BUILTINS:
            self._err("E0115", f"{kind} '{ident.name}' has the name of a builtin", ident.span,
                      label="shadows the builtin", help=f"rename it, e.g. '{ident.name}_{kind}'")
        self.decls[ident.name] = _Decl(kind, ident, node, loop)
        if kind in ("task", "gate", "carry"):
            self.graph.node(self._key(node), ident.name, ident.span)
            if loop is not None:
                self.graph.edge(self._key(node), ("in", id(loop)))
                self.graph.edge(("out", id(loop)), self._key(node))
        elif kind == "loop":
            self.graph.node(("in", id(node)), ident.name, ident.span)
            self.graph.node(("out", id(node)), ident.name, ident.span)

    @staticmethod
    def _key(node: object) -> Hashable:
        return ("n", id(node))

    # -- helpers ---------------------------------------------------------------------------------
    def _err(self, code: str, message: str, span: A.Span | None, **kw) -> None:
        self.diags.append(Diagnostic.error(code, message, span, **kw))

    def _suggest(self, name: str, candidates: Iterator[str]) -> str:
        self.suggestions += 1
        return did_you_mean(name, candidates) if self.suggestions <= _MAX_SUGGESTIONS else ""

    def _target_key(self, d: _Decl, scope: A.Loop | None) -> Hashable:
        """Outside its loop, a body value is the loop's result: waiting for it waits for the loop."""
        if d.kind == "loop" or (d.loop is not None and d.loop is not scope):
            return ("out", id(d.loop if d.loop is not None else d.node))
        return self._key(d.node)

    def _value(self, ref: A.Ref, scope: A.Loop | None, owner: Hashable) -> _Decl | None:
        d = self.decls.get(ref.name)
        if d is None:
            names = (n for n, x in self.decls.items()
                     if x.kind in _VALUE_KINDS and (x.kind != "carry" or x.loop is scope))
            self._err("E0101", f"unknown value '{ref.name}'", ref.span,
                      label=f"not defined in plan '{self.plan.name.name}'",
                      help=self._suggest(ref.name, names))
            return None
        if d.kind not in _VALUE_KINDS:
            self._err("E0112", f"{d.kind} '{ref.name}' is not a value", ref.span,
                      label=f"'{ref.name}' is {_a(d.kind)}",
                      help="values are inputs, tasks, gates and (inside their loop) carries")
            return None
        if d.kind == "carry" and d.loop is not scope:
            assert d.loop is not None
            nxt = d.node.next.name if isinstance(d.node, A.Carry) else "its update"
            self._err("E0101", f"carry '{ref.name}' is only visible inside loop '{d.loop.name.name}'",
                      ref.span, label="used outside its loop",
                      help=f"after the loop, '{nxt}' holds the last value")
            return None
        if ref.index is not None:
            self._index(ref, d)
        if d.kind == "input":
            self.used.add(ref.name)
        self.graph.edge(owner, self._target_key(d, scope))
        return d

    def _index(self, ref: A.Ref, d: _Decl) -> None:
        if d.kind == "input":
            self._err("E0112", f"input '{ref.name}' is one tensor and has no part .{ref.index}", ref.span,
                      label="indexed input", help=f"write '{ref.name}'")
        elif isinstance(d.node, A.Task) and self._callee_kind(d.node.callee.name) == "builtin":
            self._err("E0112", f"'{ref.name}' is a scalar (builtin {d.node.callee.name}) and has no "
                      f"part .{ref.index}", ref.span, label="indexed scalar", help=f"write '{ref.name}'")

    def _callee_kind(self, name: str) -> str | None:
        d = self.decls.get(name)
        if d is not None:
            return d.kind if d.kind in ("model", "tool") else None
        return "builtin" if name in A.BUILTINS else None

    def _expr(self, expr: A.Expr, scope: A.Loop | None, owner: Hashable) -> None:
        for ref in _refs(expr):
            self._value(ref, scope, owner)

    # -- statements ------------------------------------------------------------------------------
    def _stmt(self, stmt: A.Stmt) -> None:
        if isinstance(stmt, A.Target):
            self._targets(stmt)
        elif isinstance(stmt, A.Objective):
            self.diags += V.one_of(stmt.name, V.OBJECTIVES, "E0105", "objective")
        elif isinstance(stmt, A.Input):
            self.diags += V.tensor_type(stmt.type)
        elif isinstance(stmt, A.Model):
            self.diags += V.model(stmt)
        elif isinstance(stmt, A.Tool):
            self.diags += V.tool(stmt)
        elif isinstance(stmt, A.Task):
            self._task(stmt, None)
        elif isinstance(stmt, A.Gate):
            self._gate(stmt, None)
        elif isinstance(stmt, A.Loop):
            self._loop(stmt)

    def _targets(self, stmt: A.Target) -> None:
        seen: set[str] = set()
        for ident in stmt.names:
            self.diags += V.one_of(ident, V.TARGETS, "E0104", "target")
            if ident.name in seen:
                self.diags.append(Diagnostic.warning("W0002", f"target '{ident.name}' is listed twice",
                                                     ident.span, label="listed again"))
            seen.add(ident.name)

    def _owner(self, node: object, ident: A.Ident) -> Hashable:
        d = self.decls.get(ident.name)
        return self._key(node) if d is not None and d.node is node else ("dup", id(node))

    def _task(self, t: A.Task, scope: A.Loop | None) -> None:
        owner = self._owner(t, t.name)
        kind = self._callee(t.callee)
        for arg in t.args:
            if isinstance(arg, A.Ref):
                self._value(arg, scope, owner)
            elif kind in ("model", "builtin"):
                self._err("E0112", f"a literal cannot be passed to {kind} '{t.callee.name}'", arg.span,
                          label="literal argument", help="only tools take strings and numbers; "
                          "models and builtins take tensors")
        if kind == "builtin" and len(t.args) != 1:
            self._err("E0111", f"builtin '{t.callee.name}' takes exactly one tensor, got {len(t.args)}",
                      t.callee.span, label="wrong number of arguments",
                      help=f"write: {t.callee.name}(VALUE)")
        self._clauses("task", t.clauses, scope, owner)

    def _callee(self, ident: A.Ident) -> str | None:
        kind = self._callee_kind(ident.name)
        d = self.decls.get(ident.name)
        if kind is not None:
            self.used.add(ident.name)
        elif d is not None:
            self._err("E0112", f"{d.kind} '{ident.name}' cannot be called", ident.span,
                      label=f"'{ident.name}' is {_a(d.kind)}",
                      help=f"tasks call models, tools and builtins ({', '.join(A.BUILTINS)})")
        else:
            names = [n for n, x in self.decls.items() if x.kind in ("model", "tool")] + list(A.BUILTINS)
            self._err("E0103", f"unknown model, tool or builtin '{ident.name}'", ident.span,
                      label="not defined", help=self._suggest(ident.name, iter(names)))
        return kind

    def _gate(self, g: A.Gate, scope: A.Loop | None) -> None:
        owner = self._owner(g, g.name)
        self._value(g.value, scope, owner)
        self._clauses("gate", g.clauses, scope, owner)
        kinds = {type(c) for c in g.clauses}
        if A.Default in kinds and A.Timeout not in kinds:
            d = next(c for c in g.clauses if isinstance(c, A.Default))
            self.diags.append(Diagnostic.warning(
                "W0001", "'default' has no effect without 'timeout'", d.span,
                label="never taken", help="the default decision is taken when the timeout expires"))

    def _loop(self, loop: A.Loop) -> None:
        self.diags += V.count(loop.max_iter, loop.max_span, "loop max", 1, V.MAX_COUNT)
        owner_in, owner_out = ("in", id(loop)), ("out", id(loop))
        if self.decls.get(loop.name.name, None) is None or self.decls[loop.name.name].node is not loop:
            owner_in = owner_out = ("dup", id(loop))
        self._expr(loop.until, loop, owner_out)
        if loop.expect is not None and loop.max_iter >= 1 and not 1 <= loop.expect.value <= loop.max_iter:
            self._err("E0204", f"expected iterations {loop.expect.value} are outside 1..{loop.max_iter}",
                      loop.expect.span, label=f"expected a value in [1, {loop.max_iter}]",
                      help="'expect' is the average number of iterations, at most 'max'")
        if not any(isinstance(s, (A.Task, A.Gate)) for s in loop.body):
            self._err("E0404", f"loop '{loop.name.name}' has no task in its body", loop.name.span,
                      label="empty loop", help="a loop body holds tasks, gates and carries")
        for inner in loop.body:
            if isinstance(inner, A.Carry):
                self._carry(inner, loop, owner_in)
            elif isinstance(inner, A.Task):
                self._task(inner, loop)
            else:
                self._gate(inner, loop)
        self._clauses("loop", loop.clauses, None, owner_in)

    def _carry(self, c: A.Carry, loop: A.Loop, owner_in: Hashable) -> None:
        lname = loop.name.name
        init = self.decls.get(c.init.name)
        if init is not None and init.loop is loop:
            self._err("E0404", f"carry '{c.name.name}' starts from '{c.init.name}', which is computed "
                      f"inside loop '{lname}'", c.init.span, label="not available before the loop",
                      help="the initial value comes from outside the loop")
        else:
            self._value(c.init, None, owner_in)
        nxt = self.decls.get(c.next.name)
        if nxt is None or nxt.kind not in ("task", "gate") or nxt.loop is not loop:
            if nxt is None:
                self._value(c.next, loop, ("dup", id(c)))
            else:
                self._err("E0404", f"carry '{c.name.name}' must be updated from a task of loop '{lname}'",
                          c.next.span, label=f"'{c.next.name}' is {_a(nxt.kind)} outside the loop body"
                          if nxt.loop is not loop else f"'{c.next.name}' is {_a(nxt.kind)}",
                          help="'then' names the task whose value the next iteration sees")
        elif c.next.index is not None:
            self._index(c.next, nxt)

    def _clauses(self, owner_kind: str, clauses: tuple[A.Clause, ...], scope: A.Loop | None,
                 owner: Hashable) -> None:
        allowed = _ALLOWED[owner_kind]
        first: dict[type, A.Clause] = {}
        c: A.Clause
        for c in clauses:
            kw = _KEYWORD.get(type(c), type(c).__name__)
            if type(c) not in allowed:
                takes = ", ".join(_KEYWORD[t] for t in allowed)
                self._err("E0109", f"'{kw}' is not allowed on {_a(owner_kind)}", c.span,
                          label=f"not {_a(owner_kind)} clause", help=f"{_a(owner_kind)} takes: {takes}")
                continue
            if type(c) in first:
                self._err("E0110", f"'{kw}' is given twice", c.span, label="repeated clause",
                          notes=((f"first '{kw}' here", first[type(c)].span),))
                continue
            first[type(c)] = c
            self.diags += V.clause_values(c)
            self._clause_names(c, scope, owner)
        if A.Prob in first and A.When not in first:
            self._err("E0109", "'prob' needs a 'when' guard on the same statement", first[A.Prob].span,
                      label="no guard", help="prob is the expected chance that the guard is true")
        retry = first.get(A.Retry)
        if A.Backoff in first and (retry is None or (isinstance(retry, A.Retry) and retry.count == 0)):
            self.diags.append(Diagnostic.warning("W0001", "'backoff' has no effect without retries",
                                                 first[A.Backoff].span, label="never waited",
                                                 help="add 'retry N' or drop the backoff"))

    def _clause_names(self, c: A.Clause, scope: A.Loop | None, owner: Hashable) -> None:
        if isinstance(c, A.When):
            self._expr(c.expr, scope, owner)
        elif isinstance(c, A.OnFailure) and c.action.name == "use" and c.fallback is not None:
            self._value(A.Ref(c.fallback.name, None, c.fallback.span), scope, owner)
        elif isinstance(c, A.After):
            for ident in c.names:
                self._after(ident, scope, owner)

    def _after(self, ident: A.Ident, scope: A.Loop | None, owner: Hashable) -> None:
        d = self.decls.get(ident.name)
        if d is None:
            names = (n for n, x in self.decls.items() if x.kind in ("task", "gate", "loop"))
            self._err("E0101", f"unknown task '{ident.name}' in 'after'", ident.span,
                      label="no task, gate or loop of this name", help=self._suggest(ident.name, names))
        elif d.kind not in ("task", "gate", "loop"):
            self._err("E0112", f"'after' waits for tasks, gates and loops; '{ident.name}' is {_a(d.kind)}",
                      ident.span, label=f"{_a(d.kind)}")
        else:
            self.graph.edge(owner, self._target_key(d, scope))

    def _outputs(self) -> None:
        outputs = [s for s in self.plan.body if isinstance(s, A.Output)]
        if not outputs:
            self._err("E0113", f"plan '{self.plan.name.name}' has no output", self.plan.name.span,
                      label="nothing is returned", help="add: output NAME, ...")
        seen: dict[str, A.Ref] = {}
        for out in outputs:
            for ref in out.refs:
                self._value(ref, None, ("output", id(ref)))
                key = str(ref)
                if key in seen:
                    self._err("E0102", f"output '{key}' is listed twice", ref.span, label="listed again",
                              notes=(("first listed here", seen[key].span),))
                seen.setdefault(key, ref)

    def _unused(self) -> None:
        for name, d in self.decls.items():
            if d.kind in ("input", "model", "tool") and name not in self.used:
                self.diags.append(Diagnostic.warning("W0003", f"{d.kind} '{name}' is never used",
                                                     d.ident.span, label="unused",
                                                     help="remove it or use it in a task"))
