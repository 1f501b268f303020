"""The `build` pass: an AST Plan becomes a PlanGraph; unknown or misused names become Diagnostics."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

from planc.compiler.ir.graph import (
    BuiltinOp,
    BuiltinTask,
    Carry,
    ComputeTask,
    Const,
    GateDefault,
    GateTask,
    InputTask,
    LoopTask,
    ModelDecl,
    ModelKind,
    Objective,
    OutputTask,
    PlanGraph,
    PlanInfo,
    Task,
    ToolDecl,
    ToolKind,
    ToolTask,
    ValueRef,
    expr_refs,
)
from planc.compiler.passes._clauses import ClauseReader
from planc.dsl import ast as A
from planc.dsl.diagnostics import Diagnostic, DiagnosticError, did_you_mean
from planc.runtime.tools.signature import ToolSignature, may_define

__all__ = ["Build"]


@dataclass(frozen=True)
class Build:
    """Builds the IR of one plan. Paths resolve against `base_dir`, by default the
    directory of the plan's source file. Raises DiagnosticError on bad names."""

    name: ClassVar[str] = "build"
    base_dir: str | None = None

    def run(self, plan: A.Plan) -> PlanGraph:  # type: ignore[override]
        file = plan.span.file
        if self.base_dir is not None:
            base = Path(self.base_dir)
        elif file and not file.startswith("<"):
            base = Path(file).parent
        else:
            base = Path.cwd()
        return _Builder(plan, Path(os.path.abspath(base))).build()


@dataclass(frozen=True)
class _Scope:
    """Where a reference is written: the plan's top level, or inside loop `loop`."""

    loop: str | None = None


class _Builder:
    def __init__(self, plan: A.Plan, base: Path) -> None:
        self.plan, self.base = plan, base
        self.diags: list[Diagnostic] = []
        self.models: dict[str, ModelDecl] = {}
        self.tools: dict[str, ToolDecl] = {}
        self.signatures: dict[str, ToolSignature | None] = {}  # python tool -> its function, read once
        self.defs: dict[str, tuple[str, A.Span]] = {}  # value name -> (what, where)
        self.home: dict[str, str] = {}  # body task or carry name -> its loop
        self.carries: set[str] = set()
        self.loops: set[str] = set()
        self.clauses = ClauseReader(self.diags)

    # -- driver ---------------------------------------------------------------------
    def build(self) -> PlanGraph:
        info = self._info()
        self._collect_names()
        tasks: list[Task] = []
        loops: list[A.Loop] = []
        outputs: list[ValueRef] = []
        for s in self.plan.body:
            if isinstance(s, A.Input):
                tasks.append(InputTask(name=s.name.name, span=s.span, type=s.type, results=(s.type,)))
            elif isinstance(s, (A.Task, A.Gate)):
                tasks.append(self._task(s, _Scope()))
            elif isinstance(s, A.Loop):
                loops.append(s)
            elif isinstance(s, A.Output):
                outputs += [self._ref(r, _Scope()) for r in s.refs]
        if not any(isinstance(s, A.Output) for s in self.plan.body):
            self._error("E0113", f"plan '{info.name}' has no outputs", self.plan.name.span,
                        help="add `output NAME, ...` naming the values the plan returns")
        tasks.append(OutputTask(args=tuple(outputs), span=self._output_span()))
        bodies = {lp.name.name: [self._body_stmt(b, lp) for b in lp.body if not isinstance(b, A.Carry)]
                  for lp in loops}
        exported = self._exported(tasks, loops, bodies)
        for lp in loops:
            tasks.append(self._loop(lp, bodies[lp.name.name], exported.get(lp.name.name, set()), info))
        if any(d.is_error for d in self.diags):
            raise DiagnosticError(self.diags)
        return PlanGraph(info, tasks, diagnostics=self.diags)

    def _error(self, code: str, message: str, span: A.Span | None, **kw: object) -> None:
        self.diags.append(Diagnostic.error(code, message, span, **kw))  # type: ignore[arg-type]

    def _output_span(self) -> A.Span:
        outs = self.plan.stmts(A.Output)
        return outs[0].span if outs else self.plan.span

    # -- declarations -------------------------------------------------------------------
    def _info(self) -> PlanInfo:
        targets: list[str] = []
        objective = Objective.LATENCY
        seen_objective: A.Objective | None = None
        for s in self.plan.body:
            if isinstance(s, A.Target):
                targets += [n.name for n in s.names if n.name not in targets]
            elif isinstance(s, A.Objective):
                if seen_objective is not None:
                    self._error("E0118", "objective given twice", s.span,
                                notes=(("first given here", seen_objective.span),))
                seen_objective = s
                try:
                    objective = Objective.parse(s.name.name)
                except ValueError as e:
                    self._error("E0105", f"unknown objective '{s.name.name}'", s.name.span,
                                help=did_you_mean(s.name.name, [o.value for o in Objective]) or str(e))
            elif isinstance(s, A.Model):
                self._declare(self.models, s, self._model(s))
            elif isinstance(s, A.Tool):
                self._declare(self.tools, s, self._tool(s))
        inputs = tuple(s.name.name for s in self.plan.stmts(A.Input))
        return PlanInfo(self.plan.name.name, self.plan.span.file, self.base, tuple(targets), objective,
                        tuple(self.models.values()), tuple(self.tools.values()), inputs, self.plan.span)

    def _declare(self, table: dict, stmt: A.Model | A.Tool, decl: ModelDecl | ToolDecl | None) -> None:
        name = stmt.name.name
        other = self.models.get(name) or self.tools.get(name)
        if other is not None:
            self._error("E0102", f"'{name}' is declared twice", stmt.name.span,
                        notes=(("first declared here", other.span),))
        elif decl is not None:
            table[name] = decl

    def _path(self, text: str) -> Path:
        return Path(os.path.normpath(self.base / text))

    def _split_source(self, s: A.String, what: str, need_function: bool) -> tuple[str, str | None] | None:
        path, sep, func = s.value.rpartition(":")
        if not sep or not path:
            path, func = s.value, ""
        if (need_function and not func) or not path or (sep and not func.isidentifier()):
            self._error("E0117", f"malformed {what} source \"{s.value}\"", s.span,
                        label='expected "FILE.py:FUNCTION"' if need_function else None,
                        help="the function is a Python identifier after the last ':'")
            return None
        return path, (func or None)

    def _model(self, s: A.Model) -> ModelDecl | None:
        try:
            kind = ModelKind.parse(s.kind.name)
        except ValueError as e:
            self._error("E0107", f"unknown model kind '{s.kind.name}'", s.kind.span, help=str(e))
            return None
        parts = self._split_source(s.source, "model", kind is ModelKind.JAX)
        if parts is None:
            return None
        weights = self._path(s.weights.value) if s.weights is not None else None
        if weights is not None and kind is not ModelKind.JAX:
            self._error("E0109", "weights are only for jax models", s.weights.span,  # type: ignore[union-attr]
                        help=f"an {kind.value} model holds its weights itself (ONNX: inside the file or "
                             "as external data beside it)")
        return ModelDecl(s.name.name, kind, self._path(parts[0]), parts[1] or "main", weights, s.span,
                         s.weights.span if s.weights is not None else None)

    def _tool(self, s: A.Tool) -> ToolDecl | None:
        try:
            kind = ToolKind.parse(s.kind.name)
        except ValueError as e:
            self._error("E0107", f"unknown tool kind '{s.kind.name}'", s.kind.span, help=str(e))
            return None
        if kind is ToolKind.EXEC:
            return ToolDecl(s.name.name, kind, self._path(s.source.value), None, s.returns, s.span)
        parts = self._split_source(s.source, "tool", True)
        if parts is None:
            return None
        path = self._path(parts[0])
        try:
            defined = may_define(path.read_bytes(), str(parts[1]))
        except OSError as e:
            defined = True
            self._error("E0309", f"cannot read tool file '{parts[0]}': {e.strerror or e}", s.source.span,
                        help=f"paths are relative to the .plan file's folder ({self.base})")
        if not defined:
            self._error("E0310", f"{path.name} defines no function '{parts[1]}'", s.source.span,
                        help=f"tool '{s.name.name}' calls {path.name}:{parts[1]}; define it at the module's top level")
        return ToolDecl(s.name.name, kind, path, parts[1], s.returns, s.span)

    def _check_tool_call(self, s: A.Task, tool: str) -> None:
        """A python tool's call must bind to its function (read from the source, never run)."""
        decl = self.tools.get(tool)
        if decl is None or decl.kind is not ToolKind.PYTHON or decl.function is None:
            return
        if tool not in self.signatures:
            try:
                self.signatures[tool] = ToolSignature.from_source(decl.path.read_bytes(), decl.function)
            except OSError:
                self.signatures[tool] = None  # a missing file is reported where the bundle reads it
        sig = self.signatures[tool]
        problem = sig.mismatch([None] * len(s.args)) if sig is not None else None
        if sig is not None and problem is not None:
            n = len(s.args)
            self._error("E0308", f"tool '{tool}' is called with {n} argument{'s' * (n != 1)}, "
                        f"but {decl.path.name} declares {sig}", s.span, label=problem,
                        notes=((f"'{tool}' is declared here", decl.span),),
                        help="a python tool gets the call's arguments in order, and the idempotency key "
                             "as `idempotency_key=` only if it has a parameter of that name or **kwargs")

    # -- names ------------------------------------------------------------------------
    def _define(self, ident: A.Ident, what: str, span: A.Span) -> None:
        if ident.name in self.defs:
            first = self.defs[ident.name][1]
            self._error("E0102", f"'{ident.name}' is defined twice", ident.span,
                        notes=(("first defined here", first),))
        else:
            self.defs[ident.name] = (what, span)

    def _collect_names(self) -> None:
        for s in self.plan.body:
            if isinstance(s, A.Input):
                self._define(s.name, "input", s.span)
            elif isinstance(s, (A.Task, A.Gate)):
                self._define(s.name, "task", s.span)
            elif isinstance(s, A.Loop):
                self._define(s.name, "loop", s.span)
                self.loops.add(s.name.name)
                for b in s.body:
                    self._define(b.name, "carry" if isinstance(b, A.Carry) else "task", b.span)
                    self.home[b.name.name] = s.name.name
                    if isinstance(b, A.Carry):
                        self.carries.add(b.name.name)

    def _ref(self, r: A.Ref, scope: _Scope) -> ValueRef:
        """Checks that a value reference can be seen from `scope`; the IR keeps it either way."""
        name = r.name
        what = self.defs.get(name, ("", None))[0]
        if what == "loop":
            inner = sorted(n for n, lp in self.home.items() if lp == name and n not in self.carries)
            self._error("E0112", f"'{name}' is a loop, not a value", r.span,
                        help=f"use one of its values: {', '.join(inner)}" if inner else "")
        elif what == "carry" and self.home[name] != scope.loop:
            self._error("E0404", f"carry '{name}' is only visible inside loop '{self.home[name]}'", r.span,
                        notes=(("declared here", self.defs[name][1]),),
                        help="use the loop's last value instead: the carry's `then` value")
        elif not what:
            hint = did_you_mean(name, [n for n, (w, _) in self.defs.items() if w not in ("loop",)])
            if name in self.models or name in self.tools or name in A.BUILTINS:
                hint = f"'{name}' is called, not passed: task x = {name}(...)"
            self._error("E0101", f"unknown value '{name}'", r.span, label="not defined in this plan",
                        help=hint)
        return ValueRef(name, r.index, r.span)

    def _refs_in(self, expr: A.Expr | None, scope: _Scope) -> None:
        for r in expr_refs(expr):
            self._ref(r, scope)

    # -- tasks ------------------------------------------------------------------------
    def _task(self, s: A.Task | A.Gate, scope: _Scope) -> Task:
        if isinstance(s, A.Gate):
            c = self.clauses.read(s.clauses, "gate", self._resolve_fallback(scope))
            self._refs_in(c.guard, scope)
            return GateTask(name=s.name.name, span=s.span, args=(self._ref(s.value, scope),), guard=c.guard,
                            prob=c.prob, after=self._after(c.after), timeout=c.timeout,
                            default=c.default or GateDefault.REJECT)
        callee = s.callee.name
        kind = "tool" if callee in self.tools else "model" if callee in self.models else \
            "builtin" if callee in A.BUILTINS else None
        if kind is None:
            self._error("E0103", f"unknown model, tool or builtin '{callee}'", s.callee.span,
                        help=did_you_mean(callee, [*self.models, *self.tools, *A.BUILTINS]))
        c = self.clauses.read(s.clauses, kind or "tool", self._resolve_fallback(scope))
        self._refs_in(c.guard, scope)
        args = tuple(self._arg(a, scope, kind, callee) for a in s.args)
        common = {"name": s.name.name, "span": s.span, "args": args, "guard": c.guard, "prob": c.prob,
                  "after": self._after(c.after)}
        if kind == "model":
            return ComputeTask(model=callee, **common)  # type: ignore[arg-type]
        if kind == "builtin":
            if len(args) != 1:
                self._error("E0111", f"builtin '{callee}' takes 1 argument, got {len(args)}", s.span)
            return _builtin(callee, common)
        self._check_tool_call(s, callee)
        return ToolTask(tool=callee, policy=c.policy(), **common)  # type: ignore[arg-type]

    def _arg(self, a: A.Ref | A.Number | A.String, scope: _Scope, kind: str | None, callee: str):
        if isinstance(a, A.Ref):
            return self._ref(a, scope)
        if kind in ("model", "builtin"):
            self._error("E0112", f"a constant cannot be passed to {kind} '{callee}'", a.span,
                        help="models and builtins take tensors; only tools take constants")
        return Const(a.value, a.span)

    def _resolve_fallback(self, scope: _Scope):
        return lambda ident: self._ref(A.Ref(ident.name, None, ident.span), scope)

    def _after(self, idents: tuple[A.Ident, ...]) -> tuple[str, ...]:
        for i in idents:
            if i.name not in self.defs:
                self._error("E0101", f"unknown task '{i.name}' after `after`", i.span,
                            help=did_you_mean(i.name, self.defs))
            elif self.defs[i.name][0] in ("input", "carry"):
                self._error("E0112", f"`after` needs a task, gate or loop; '{i.name}' is "
                            f"{'an input' if self.defs[i.name][0] == 'input' else 'a carry'}", i.span)
        return tuple(dict.fromkeys(i.name for i in idents))

    # -- loops ------------------------------------------------------------------------
    def _body_stmt(self, b: A.Task | A.Gate, lp: A.Loop) -> Task:
        return self._task(b, _Scope(lp.name.name))

    def _exported(self, outer: list[Task], loops: list[A.Loop],
                  bodies: dict[str, list[Task]]) -> dict[str, set[ValueRef]]:
        """Per loop, the values of its body used outside it (by the plan or by another loop)."""
        out: dict[str, set[ValueRef]] = {}

        def note(name: str, index: int | None, where: str | None) -> None:
            home = self.home.get(name)
            if home is not None and home != where and name not in self.carries:
                out.setdefault(home, set()).add(ValueRef(name, index))

        for t in outer:
            for u in t.uses():
                note(u.task, u.index, None)
        for lp in loops:
            name = lp.name.name
            for t in bodies[name]:
                for u in t.uses():
                    note(u.task, u.index, name)
            for r in expr_refs(lp.until):
                note(r.name, r.index, name)
            for c in lp.body:
                if isinstance(c, A.Carry):
                    note(c.init.name, c.init.index, None)
            for clause in lp.clauses:
                for r in expr_refs(clause.expr if isinstance(clause, A.When) else None):
                    note(r.name, r.index, None)
        return out

    def _loop(self, lp: A.Loop, body: list[Task], exported: set[ValueRef], info: PlanInfo) -> LoopTask:
        name, scope = lp.name.name, _Scope(lp.name.name)
        carries = tuple(self._carry(c, lp) for c in lp.body if isinstance(c, A.Carry))
        self._refs_in(lp.until, scope)
        c = self.clauses.read(lp.clauses, "loop", self._resolve_fallback(_Scope()))
        self._refs_in(c.guard, _Scope())
        local = {t.name for t in body} | {cr.name for cr in carries}
        captured: dict[ValueRef, ValueRef] = {}
        for ref in [*(cr.init for cr in carries), *(u for t in body for u in t.uses()),
                    *(ValueRef(r.name, r.index, r.span) for r in expr_refs(lp.until))]:
            if ref.task not in local:
                captured.setdefault(ref, ref)
        order = {t.name: i for i, t in enumerate(body)}
        exports = sorted((v for v in exported if v.task in order),
                         key=lambda v: (order[v.task], -1 if v.index is None else v.index))
        graph = PlanGraph(replace(info, name=name, inputs=()), body)
        # A body task ordered after an outer task orders the whole loop after it.
        inner_after = [a for t in body for a in t.after if a not in order]
        after = tuple(dict.fromkeys([*self._after(c.after), *inner_after]))
        return LoopTask(name=name, span=lp.span, args=tuple(captured), guard=c.guard, prob=c.prob,
                        after=after, max_iter=lp.max_iter, until=lp.until, body=graph,
                        carries=carries, exports=tuple(exports),
                        expect=float(lp.expect.value) if lp.expect is not None else None)

    def _carry(self, c: A.Carry, lp: A.Loop) -> Carry:
        init = self._ref(c.init, _Scope())
        if self.home.get(c.init.name) == lp.name.name:
            self._error("E0404", f"carry '{c.name.name}' starts from '{c.init.name}', a value of its own loop",
                        c.init.span, help="the initial value must exist before the loop starts")
        nxt = self._ref(c.next, _Scope(lp.name.name))
        if c.next.name in self.defs and (self.home.get(c.next.name) != lp.name.name
                                         or c.next.name in self.carries):
            self._error("E0404", f"carry '{c.name.name}' must be updated from a task of loop "
                        f"'{lp.name.name}', not '{c.next.name}'", c.next.span)
        return Carry(c.name.name, init, nxt, c.span)


def _builtin(callee: str, common: dict) -> Task:
    return BuiltinTask(op=BuiltinOp.parse(callee), **common)  # type: ignore[arg-type]
