"""hypothesis strategies for syntactically valid ASTs covering every construct of the language."""

from __future__ import annotations

import re

from hypothesis import strategies as st
from lark.lexer import PatternStr
from planc.dsl import ast as A
from planc.dsl.parser import grammar

# Keywords cannot be names where a keyword could also follow (e.g. after `on failure skip`).
KEYWORDS = frozenset(t.pattern.value for t in grammar().terminals
                     if isinstance(t.pattern, PatternStr) and re.fullmatch(r"[a-z]+", t.pattern.value))

_POOL = ["a", "b", "x", "frame", "t0", "_tmp", "Det2", "quality", "max_", "r"]
names = st.one_of(
    st.sampled_from(_POOL),
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,7}", fullmatch=True).filter(lambda s: s not in KEYWORDS),
)
idents = st.builds(A.Ident, names)
target_names = st.builds(lambda parts: A.Ident("-".join(parts)), st.lists(names, min_size=1, max_size=3))
refs = st.builds(A.Ref, names, st.one_of(st.none(), st.integers(0, 20)))
numbers = st.builds(A.Number, st.one_of(
    st.integers(-10**12, 10**12),
    st.floats(allow_nan=False, allow_infinity=False),
))
strings = st.builds(A.String, st.text(st.characters(blacklist_categories=("Cs",)), max_size=12))
durations = st.builds(
    A.Duration,
    st.one_of(st.integers(0, 10**9), st.floats(min_value=0, max_value=1e6, allow_nan=False)),
    st.sampled_from(sorted(A.DURATION_UNITS)),
)
tensor_types = st.builds(A.TensorType, st.sampled_from(list(A.DType)),
                         st.lists(st.integers(0, 2**31), max_size=4).map(tuple))

_CMP = ["<", "<=", ">", ">=", "==", "!="]


def _extend(children: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(
        st.builds(A.Compare, st.sampled_from(_CMP), children, children),
        st.builds(A.BoolOp, st.sampled_from(["and", "or"]),
                  st.lists(children, min_size=2, max_size=3).map(tuple)),
        st.builds(A.Not, children),
    )


exprs = st.recursive(st.one_of(refs, numbers), _extend, max_leaves=8)

clauses = st.one_of(
    st.builds(A.When, exprs),
    st.builds(A.Retry, st.integers(0, 10**6)),
    st.builds(A.Backoff, durations, durations),
    st.builds(A.Timeout, durations),
    st.builds(A.Breaker, st.integers(0, 10**6), durations),
    st.builds(A.OnFailure, idents, st.one_of(st.none(), idents)),
    st.builds(A.Cost, durations),
    st.builds(A.After, st.lists(idents, min_size=1, max_size=3).map(tuple)),
    st.builds(A.Prob, numbers),
    st.builds(A.Default, idents),
)
clause_lists = st.lists(clauses, max_size=4).map(tuple)

tasks = st.builds(A.Task, idents, idents,
                  st.lists(st.one_of(refs, numbers, strings), max_size=4).map(tuple), clause_lists)
gates = st.builds(A.Gate, idents, refs, clause_lists)
carries = st.builds(A.Carry, idents, refs, refs)
loops = st.builds(
    A.Loop, idents, st.integers(0, 10**6), exprs,
    st.lists(st.one_of(carries, tasks, gates), max_size=4).map(tuple),
    st.one_of(st.none(), numbers), clause_lists,
)
stmts = st.one_of(
    st.builds(A.Target, st.lists(target_names, min_size=1, max_size=3).map(tuple)),
    st.builds(A.Objective, idents),
    st.builds(A.Input, idents, tensor_types),
    st.builds(A.Model, idents, idents, strings, st.one_of(st.none(), strings)),
    st.builds(A.Tool, idents, idents, strings, st.one_of(st.none(), tensor_types)),
    tasks, gates, loops,
    st.builds(A.Output, st.lists(refs, min_size=1, max_size=3).map(tuple)),
)
plans = st.builds(A.Plan, idents, st.lists(stmts, max_size=8).map(tuple))
modules = st.builds(A.Module, st.lists(plans, max_size=3).map(tuple))
