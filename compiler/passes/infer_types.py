"""The `infer-types` pass: every value gets a TensorType (or opaque JSON), every jax compute task its cost facts.

Rules: inputs are declared; a model's results come from tracing it (jax) or its entry
signature (mlir); builtins reduce to a rank-0 scalar (`max`, `min` keep the dtype; `sum`
keeps it, bool sums to i32; `mean` keeps float dtypes, integers and bool average to f32;
`argmax` gives the flat index as i32, as jnp.argmax does without x64); a tool gives its
declared `returns` type or opaque JSON; a gate the type of its value; a loop's carries
the type of their initial value, which their `then` value must match.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import ClassVar

from planc.compiler.cache import onnx_store
from planc.compiler.ir.graph import (
    BuiltinOp,
    BuiltinTask,
    Carry,
    ComputeTask,
    Const,
    GateTask,
    InputTask,
    IRError,
    LoopTask,
    OutputTask,
    PlanGraph,
    Task,
    ToolTask,
    ValueRef,
    ValueType,
    expr_refs,
)
from planc.compiler.models.load import ModelCache, ModelError, shared_cache
from planc.compiler.models.onnx_model import load_any_model
from planc.compiler.passes.verify import cycle_diagnostics, scalar_problem
from planc.dsl.ast import Span, TensorType
from planc.dsl.diagnostics import Diagnostic, DiagnosticError

__all__ = ["InferTypes", "builtin_result"]

def builtin_result(op: BuiltinOp, t: TensorType) -> TensorType:
    """The rank-0 type a builtin reduction of `t` gives."""
    return TensorType(op.result_dtype(t.dtype), ())


@dataclass(frozen=True)
class InferTypes:
    """Types the graph. `facts` runs JAX's cost analysis per model and signature;
    `cache` memoizes model loading (the process-wide one by default)."""

    name: ClassVar[str] = "infer-types"
    facts: bool = True
    cache: ModelCache | None = field(default=None, compare=False, repr=False)

    def run(self, graph: PlanGraph) -> PlanGraph:
        typer = _Typer(graph, self.cache or shared_cache(), self.facts)
        new = typer.graph(graph, {})
        if any(d.is_error for d in typer.diags):
            raise DiagnosticError(typer.diags)
        return new


@dataclass(frozen=True)
class _Value:
    """What a reference to task `name` can see: its values, their types, where it is defined."""

    values: tuple[ValueRef, ...]
    types: tuple[ValueType, ...]
    span: Span
    what: str


class _Typer:
    def __init__(self, root: PlanGraph, cache: ModelCache, facts: bool) -> None:
        self.root, self.cache, self.facts = root, cache, facts
        self.diags: list[Diagnostic] = []
        self.reported: set[tuple[str, str]] = set()

    def error(self, code: str, message: str, span: Span | None, **kw: object) -> None:
        self.diags.append(Diagnostic.error(code, message, span, **kw))  # type: ignore[arg-type]

    # -- graphs ---------------------------------------------------------------------------
    def graph(self, g: PlanGraph, env: dict[str, _Value]) -> PlanGraph:
        """Types g in topological order; `env` (outer values, carries) is extended in place."""
        new: dict[str, Task] = {}
        try:
            order = g.topo_order()
        except IRError:
            raise DiagnosticError(cycle_diagnostics(g)) from None  # run without verify before it
        for name in order:
            t = g.task(name)
            typed = self.task(t, env)
            new[name] = typed
            if typed.typed and typed.values():
                self._publish(typed, env)
        return g.rebuild(new[t.name] for t in g.tasks())

    def _publish(self, t: Task, env: dict[str, _Value]) -> None:
        if isinstance(t, LoopTask):
            for inner in t.body.tasks():
                if inner.typed:
                    env[inner.name] = _Value(inner.values(), inner.results, inner.span, _describe(inner))
            return
        env[t.name] = _Value(t.values(), t.results, t.span, _describe(t))

    # -- values -----------------------------------------------------------------------------
    def resolve(self, ref: ValueRef, env: dict[str, _Value]) -> tuple[bool, ValueType]:
        """(ok, type); not ok when the producer is untyped (already reported) or the index is bad."""
        v = env.get(ref.task)
        if v is None:
            return False, None
        key = ValueRef(ref.task, ref.index)
        if key in v.values:
            return True, v.types[v.values.index(key)]
        n = len(v.values)
        if ref.index is None:
            msg = f"'{ref.task}' returns a tuple of {n} values; use {ref.task}.0 to {ref.task}.{n - 1}"
        elif n == 1 and v.values[0].index is None:
            msg = f"'{ref.task}' returns a single value, not a tuple; write '{ref.task}'"
        else:
            msg = f"tuple index {ref.index} is out of range: '{ref.task}' has {n} values"
        self.error("E0306", msg, ref.span, notes=((f"'{ref.task}' is defined here", v.span),))
        return False, None

    def _tensor_args(self, t: Task, env: dict[str, _Value], callee: str) -> list[TensorType] | None:
        types: list[TensorType] = []
        ok = True
        for a in t.args:
            if isinstance(a, Const):
                ok = False  # build reported it
                continue
            known, ty = self.resolve(a, env)
            if not known:
                ok = False
            elif ty is None:
                producer = env[a.task]
                self.error("E0301", f"{callee} needs a tensor, but '{a}' is opaque JSON", a.span,
                           notes=((f"'{a.task}' is {producer.what} without `returns`", producer.span),),
                           help="declare the tool's result type: `tool NAME = ... returns f32[...]`")
                ok = False
            else:
                types.append(ty)
        return types if ok else None

    def _guard(self, expr, env: dict[str, _Value], what: str) -> None:  # type: ignore[no-untyped-def]
        for r in expr_refs(expr):
            known, ty = self.resolve(ValueRef(r.name, r.index, r.span), env)
            problem = scalar_problem(ty) if known else None
            if problem:
                v = env[r.name]
                self.error("E0305", f"{what} compares '{r}', {problem}", r.span,
                           notes=((f"'{r.name}' is defined here", v.span),),
                           help="compare a rank-0 scalar: reduce it first, e.g. max(x)")

    # -- tasks --------------------------------------------------------------------------------
    def task(self, t: Task, env: dict[str, _Value]) -> Task:
        self._guard(t.guard, env, "`when`")
        if isinstance(t, (InputTask, OutputTask)):
            if isinstance(t, OutputTask):
                for a in t.args:
                    if isinstance(a, ValueRef):
                        self.resolve(a, env)
            return t
        if isinstance(t, ComputeTask):
            return self._compute(t, env)
        if isinstance(t, BuiltinTask):
            types = self._tensor_args(t, env, f"builtin '{t.op.value}'")
            return replace(t, results=(builtin_result(t.op, types[0]),)) if types and len(types) == 1 else t
        if isinstance(t, ToolTask):
            return self._tool(t, env)
        if isinstance(t, GateTask):
            known, ty = self.resolve(t.args[0], env) if isinstance(t.args[0], ValueRef) else (False, None)
            return replace(t, results=(ty,)) if known else t
        if isinstance(t, LoopTask):
            return self._loop(t, env)
        if t.typed:
            return t  # a kind added by a later pass arrives typed
        raise IRError(f"infer-types cannot type a '{t.kind}' node ('{t.name}')")

    def _compute(self, t: ComputeTask, env: dict[str, _Value]) -> Task:
        decl = self.root.info.model(t.model)
        types = self._tensor_args(t, env, f"model '{t.model}'")
        if types is None:
            return t
        try:
            loaded = load_any_model(decl, types, cache=self.cache, facts=self.facts, onnx_store=onnx_store())
        except ModelError as e:
            self._model_error(e, t, decl, env)
            return t
        return replace(t, results=loaded.results, tuple_result=loaded.tuple_result, facts=loaded.facts)

    def _model_error(self, e: ModelError, t: Task, decl, env: dict[str, _Value]) -> None:  # type: ignore[no-untyped-def]
        if e.where in ("model", "weights"):
            if (decl.name, e.message) in self.reported:
                return
            self.reported.add((decl.name, e.message))
            span = decl.weights_span if e.where == "weights" and decl.weights_span else decl.span
            self.error(e.code, e.message, span, notes=((f"needed by task '{t.name}'", t.span),), help=e.help)
        elif e.where == "arg" and e.arg is not None:
            arg = t.args[e.arg]
            produced = env[arg.task] if isinstance(arg, ValueRef) else None
            notes = ((f"'{arg}' is produced here", produced.span),) if produced else ()
            self.error(e.code, e.message, arg.span, help=e.help,
                       notes=(*notes, (f"model '{decl.name}' is declared here", decl.span)))
        else:
            self.error(e.code, e.message, t.span,
                       notes=((f"model '{decl.name}' is declared here", decl.span),), help=e.help)

    def _tool(self, t: ToolTask, env: dict[str, _Value]) -> Task:
        decl = self.root.info.tool(t.tool)
        for a in t.args:
            if isinstance(a, ValueRef):
                self.resolve(a, env)
        fb = t.policy.fallback
        if fb is not None and decl.returns is not None:
            known, ty = self.resolve(fb, env)
            if known and ty != decl.returns:
                shown = "opaque JSON" if ty is None else str(ty)
                self.error("E0301", f"fallback '{fb}' has type {shown}, but tool '{t.tool}' returns "
                           f"{decl.returns}", fb.span,
                           notes=((f"'{t.tool}' is declared to return {decl.returns} here", decl.span),
                                  (f"'{fb.task}' is defined here", env[fb.task].span)))
        return replace(t, results=(decl.returns,))

    def _loop(self, t: LoopTask, env: dict[str, _Value]) -> Task:
        inner = dict(env)
        carries: list[Carry] = []
        for c in t.carries:
            known, ty = self.resolve(c.init, env)
            carries.append(replace(c, type=ty, typed=True) if known else c)
            if known:
                inner[c.name] = _Value((ValueRef(c.name),), (ty,), c.span, f"carry '{c.name}'")
        body = self.graph(t.body, inner)
        for c in carries:
            known, ty = self.resolve(c.next, inner)
            if c.typed and known and ty != c.type:
                self._carry_mismatch(c, ty, inner)
        self._guard(t.until, inner, "`until`")
        results = []
        for v in t.exports:
            known, ty = self.resolve(v, inner)
            if not known:
                return replace(t, body=body, carries=tuple(carries))
            results.append(ty)
        return replace(t, body=body, carries=tuple(carries), results=tuple(results))

    def _carry_mismatch(self, c: Carry, next_type: ValueType, env: dict[str, _Value]) -> None:
        show = lambda ty: "opaque JSON" if ty is None else str(ty)
        self.error("E0301", f"carry '{c.name}' starts as {show(c.type)} but is updated to "
                   f"{show(next_type)}", c.next.span,
                   notes=((f"initial value '{c.init}' has type {show(c.type)}", c.init.span or c.span),
                          (f"'{c.next}' has type {show(next_type)}", env[c.next.task].span)),
                   help="a carry keeps one type across iterations")


def _describe(t: Task) -> str:
    if isinstance(t, ToolTask):
        return f"the result of tool '{t.tool}'"
    if isinstance(t, GateTask):
        return f"gate '{t.name}'"
    return f"{t.kind} task '{t.name}'"

