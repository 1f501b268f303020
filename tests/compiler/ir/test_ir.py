"""The IR: records, derived edges, deterministic order, copies, and the printer."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st
from planc.compiler.ir.graph import (
    OUTPUT,
    BuiltinOp,
    BuiltinTask,
    ComputeTask,
    Const,
    CostFacts,
    Edge,
    FailureAction,
    InputTask,
    IRError,
    ModelDecl,
    ModelKind,
    OutputTask,
    PlanGraph,
    PlanInfo,
    Policy,
    Task,
    ToolDecl,
    ToolKind,
    ToolTask,
    ValueRef,
    format_seconds,
)
from planc.compiler.ir.printer import format_expr, print_ir, print_task
from planc.compiler.passes.verify import verify_graph
from planc.dsl import ast as A
from planc.dsl.ast import DType, TensorType
from planc.dsl.parser import parse

F4 = TensorType(DType.F32, (1, 4))
SCALAR = TensorType(DType.F32, ())
BASE = Path("/plans/demo")
INFO = PlanInfo(
    "demo", "demo.plan", BASE, ("x86_64-avx2",),
    models=(ModelDecl("m", ModelKind.JAX, BASE / "models.py", "f"),),
    tools=(ToolDecl("notify", ToolKind.EXEC, BASE / "tools" / "notify.sh", returns=SCALAR),),
    inputs=("x",),
)


def r(name: str, index: int | None = None) -> ValueRef:
    return ValueRef(name, index)


def small(typed: bool = False) -> PlanGraph:
    res = (lambda *t: t) if typed else (lambda *t: ())
    return PlanGraph(INFO, [
        InputTask(name="x", type=F4, results=(F4,)),
        ComputeTask(name="c", model="m", args=(r("x"),), results=res(F4)),
        BuiltinTask(name="w", op=BuiltinOp.MAX, args=(r("c"),), results=res(SCALAR)),
        ToolTask(name="n", tool="notify", args=(r("c"), Const("hi")), guard=A.Compare(">", A.Ref("w"), A.Number(1)),
                 policy=Policy(retry=2, on_failure=FailureAction.USE, fallback=r("w")), results=res(SCALAR)),
        BuiltinTask(name="a", op=BuiltinOp.MIN, args=(r("x"),), after=("n",), results=res(SCALAR)),
        OutputTask(args=(r("w"), r("n"), r("a"))),
    ])


def test_edges_follow_args_guards_fallbacks_and_after() -> None:
    g = small()
    assert g.edge("x", "c") == Edge(("x",), (F4,))  # inputs are typed from the start
    assert g.edge("w", "n") == Edge(("w",))  # guard and fallback: one value, once
    assert g.edge("c", "n").values == ("c",)
    assert g.edge("n", "a") == Edge((), (), control=True)
    assert set(g.nx.predecessors(OUTPUT)) == {"w", "n", "a"}
    assert g.free_refs == () and g.free_after == ()


def test_edge_types_and_bytes_once_typed() -> None:
    g = small(typed=True)
    e = g.edge("x", "c")
    assert e.types == (F4,) and e.nbytes == 16
    assert g.edge("n", "a").nbytes == 0
    assert g.value_type(r("w")) == SCALAR


def test_topological_order_breaks_ties_by_name() -> None:
    tasks = [InputTask(name=n, type=F4, results=(F4,)) for n in ("zeta", "alpha", "mid")]
    tasks.append(OutputTask(args=(r("zeta"), r("alpha"))))
    g = PlanGraph(INFO, tasks)
    assert g.topo_order() == ("alpha", "mid", "zeta", "<output>")
    assert g.topo_order() == PlanGraph(INFO, list(reversed(tasks))).topo_order()


def test_replace_task_copies_and_recomputes_edges() -> None:
    g = small()
    c = g.task("c")
    g2 = g.replace_task(dataclasses.replace(c, results=(F4,)))
    assert g.task("c").results == () and g2.task("c").results == (F4,)
    assert g.edge("c", "w").types == () and g2.edge("c", "w").types == (F4,)
    assert g2 is not g and g2.nx is not g.nx


def test_records_are_frozen_and_slotted() -> None:
    t = small().task("c")
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.name = "other"  # type: ignore[misc]
    assert not hasattr(t, "__dict__")


def test_construction_errors_are_ir_errors() -> None:
    x = InputTask(name="x", type=F4, results=(F4,))
    with pytest.raises(IRError, match="two nodes named 'x'"):
        PlanGraph(INFO, [x, x])
    with pytest.raises(IRError, match="no task 'nope'"):
        small().replace_task(InputTask(name="nope", type=F4))
    with pytest.raises(IRError, match="no task 'nope'"):
        small().task("nope")


def test_dangling_references_are_kept_and_verified_not_key_errors() -> None:
    g = PlanGraph(INFO, [BuiltinTask(name="w", op=BuiltinOp.MAX, args=(r("ghost"),), after=("phantom",)),
                         OutputTask(args=(r("w"),))])
    assert [(u, str(ref)) for u, ref in g.free_refs] == [("w", "ghost")]
    codes = sorted(d.code for d in verify_graph(g))
    assert codes == ["E0402", "E0402"]


def test_producer_and_consumers() -> None:
    g = small()
    assert g.producer(r("c")) == "c" and g.producer("nothing") is None
    assert g.consumers("c") == ("n", "w")
    assert g.consumers("w") == ("<output>", "n")


@dataclass(frozen=True, slots=True, kw_only=True)
class _Group(Task):
    """What a merge pass adds: compute tasks fused into one node (a stand-in for the lead's GroupTask)."""

    kind: ClassVar[str] = "group"
    members: tuple[ComputeTask, ...]
    device: str = "cpu0"

    def defines(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.members)

    def values(self) -> tuple[ValueRef, ...]:
        return (ValueRef(self.members[-1].name),)

    def nested(self) -> tuple[Task, ...]:
        return self.members

    def attributes(self) -> tuple[tuple[str, str], ...]:
        return (("device", self.device),)


def test_a_new_kind_prints_links_and_verifies_through_the_generic_hooks() -> None:
    c1 = ComputeTask(name="c1", model="m", args=(r("x"),), results=(F4,), facts=CostFacts(10.0, 64.0))
    c2 = ComputeTask(name="c2", model="m", args=(r("c1"),), results=(F4,))
    g = PlanGraph(INFO, [
        InputTask(name="x", type=F4, results=(F4,)),
        _Group(name="g0", members=(c1, c2), args=(r("x"),), results=(F4,)),
        BuiltinTask(name="w", op=BuiltinOp.MAX, args=(r("c2"),), results=(SCALAR,)),
        OutputTask(args=(r("w"),)),
    ])
    assert g.producer(r("c2")) == "g0" and g.edge("g0", "w").types == (F4,)
    assert [d for d in verify_graph(g) if d.is_error] == []
    text = print_task(g, "g0")
    assert text.splitlines() == [
        "%c2 = group(%x) : (f32[1,4]) -> f32[1,4]  {device=cpu0} {",
        "  %c1 = compute @m(%x) : (f32[1,4]) -> f32[1,4]  {flops=10, bytes=64}",
        "  %c2 = compute @m(%c1) : (f32[1,4]) -> f32[1,4]",
        "}",
    ]


def test_printer_is_deterministic_and_path_free() -> None:
    text = print_ir(small(typed=True))
    assert text == print_ir(small(typed=True))
    assert "/plans" not in text
    assert 'tool @notify = exec "tools/notify.sh" -> f32[]' in text
    assert ('%n = tool @notify(%c, "hi") : (f32[1,4], json) -> f32[] when %w > 1  '
            '{retry=2, on_failure=use %w}') in text
    assert "%a = builtin min(%x) : (f32[1,4]) -> f32[] after n" in text
    assert text.rstrip().endswith("output %w, %n, %a\n}")


@pytest.mark.parametrize("seconds,text", [(0.1, "100ms"), (2.0, "2s"), (1800.0, "30m"), (3600.0, "1h"),
                                          (90.0, "90s"), (0.0005, "0.0005s")])
def test_format_seconds(seconds: float, text: str) -> None:
    assert format_seconds(seconds) == text


# Expressions: the printer's text (without the %) parses back to the same AST, parentheses and all.
_refs = st.sampled_from(["a", "b", "q"]).map(lambda n: A.Ref(n))
_nums = st.one_of(st.integers(-50, 50), st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)).map(A.Number)
_cmp = st.builds(A.Compare, st.sampled_from(["<", "<=", ">", ">=", "==", "!="]), _refs, st.one_of(_refs, _nums))


def _exprs() -> st.SearchStrategy[A.Expr]:
    return st.recursive(_cmp, lambda inner: st.one_of(
        st.builds(A.Not, inner),
        st.builds(A.BoolOp, st.sampled_from(["and", "or"]), st.lists(inner, min_size=2, max_size=3).map(tuple)),
    ), max_leaves=6)


@given(_exprs())
def test_printed_expressions_parse_back(expr: A.Expr) -> None:
    text = format_expr(expr).replace("%", "")
    src = f"plan p {{ input a: f32[] input b: f32[] input q: f32[] task t = max(a) when {text} output t }}"
    task = parse(src).plans[0].stmts(A.Task)[0]
    assert task.clauses[0].expr == expr
