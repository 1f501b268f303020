"""Flop, transcendental, byte and dispatch counts read op by op from a StableHLO module's text."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = ["ANCHORS", "TRANSCENDENTAL_WEIGHT", "WRITE_WEIGHT", "HloCounts", "count_stablehlo"]

# Bytes written count this many times in `bytes_accessed`: a CPU reads a line for ownership
# before it writes it back (measured here: a read-only row sum and a read-write axpb stream at
# the same rate only when the axpb's writes count twice).
WRITE_WEIGHT = 2.0

# Element-wise ops that run as a polynomial or an iterative sequence on a vector unit, in
# flop-equivalents per element (the lengths of the expansions MLIR's math dialect uses on CPUs;
# divide and the square roots are one hardware instruction of low throughput). `flops` adds
# weight x elements; `transcendentals` counts the elements.
TRANSCENDENTAL_WEIGHT: Mapping[str, float] = MappingProxyType({
    "exponential": 14.0, "exponential_minus_one": 16.0, "log": 18.0, "log_plus_one": 20.0,
    "logistic": 18.0, "tanh": 18.0, "sine": 22.0, "cosine": 22.0, "tan": 30.0, "atan2": 30.0,
    "power": 36.0, "erf": 24.0, "erfc": 26.0, "erf_inv": 30.0, "cbrt": 20.0,
    "sqrt": 4.0, "rsqrt": 4.0, "divide": 4.0, "remainder": 6.0,
})
# Element-wise ops of one flop per element (clamp: two).
_ARITH: Mapping[str, float] = MappingProxyType({
    **dict.fromkeys(("add", "subtract", "multiply", "maximum", "minimum", "negate", "abs", "compare",
                     "select", "and", "or", "xor", "not", "sign", "floor", "ceil", "round_nearest_even",
                     "round_nearest_afz", "is_finite", "shift_left", "shift_right_logical",
                     "shift_right_arithmetic", "popcnt", "count_leading_zeros"), 1.0),
    "clamp": 2.0,
})
# Ops IREE makes the root of a dispatch of their own (element-wise producers and consumers fuse
# into them); every other op fuses into its neighbours.
ANCHORS = frozenset({"dot_general", "dot", "convolution", "reduce", "reduce_window", "sort", "scatter",
                     "gather", "select_and_scatter", "fft", "while", "if", "case", "custom_call",
                     "triangular_solve", "cholesky", "rng", "rng_bit_generator", "dynamic_update_slice"})
_NO_DATA = frozenset({"return", "func.return", "stablehlo.return"})
_ELEM_BITS = re.compile(r"^(?:[a-z]*?)(\d+)")
_DIMS = re.compile(r"(lhs_contracting_dimensions|lhs_batching_dimensions)\s*=\s*\[([0-9,\s]*)\]")


@dataclass(frozen=True, slots=True)
class HloCounts:
    """What one StableHLO module computes and moves, device-independently.

    `flops` counts arithmetic (an FMA is 2) plus each transcendental element weighted by
    TRANSCENDENTAL_WEIGHT; `transcendentals` the transcendental elements alone.
    `bytes_accessed` is the memory traffic of the module's dispatches after fusion: each
    dispatch (an anchor op with its element-wise neighbours fused in, or an element-wise
    tail) reads the materialized tensors it needs (arguments, weights, other dispatches'
    results) and writes its result (writes weigh WRITE_WEIGHT). `contraction_flops` are the
    flops of matmuls and convolutions (`vector_flops` the rest). `working_set` is the size of every distinct tensor the
    module touches; `dispatches` the number of dispatches IREE is expected to form (the
    compiled module's own count, `costs.dispatches.dispatch_count`, is exact).
    """

    flops: float
    transcendentals: float
    bytes_accessed: float
    working_set: float
    dispatches: int
    ops: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    contraction_flops: float = 0.0

    @property
    def vector_flops(self) -> float:
        """Flops outside matmuls and convolutions (element-wise, transcendental, reductions)."""
        return max(0.0, self.flops - self.contraction_flops)


@dataclass(slots=True)
class _Node:
    op: str
    operands: list[int]
    results: list[int]
    anchor: bool


@dataclass(slots=True)
class _Flow:
    """The module's data flow, inlined through calls: values are ids with byte sizes."""

    nodes: list[_Node] = field(default_factory=list)
    nbytes: dict[int, float] = field(default_factory=dict)
    materialized: set[int] = field(default_factory=set)  # arguments and weights
    returned: list[int] = field(default_factory=list)
    flops: float = 0.0
    trans: float = 0.0
    contraction: float = 0.0
    ops: dict[str, int] = field(default_factory=dict)
    next_id: int = 0

    def new(self, nbytes: float) -> int:
        self.next_id += 1
        self.nbytes[self.next_id] = nbytes
        return self.next_id


def count_stablehlo(text: str) -> HloCounts:
    """Counts of the module's entry function `main` (calls inlined, loop bodies counted once).

    Raises StableHLOError (hlo.stablehlo) for text that is not MLIR or has no `main`."""
    from iree.compiler import ir
    from planc.compiler.hlo.stablehlo import StableHLOError, _find_main, _parse

    with ir.Context() as ctx:
        ctx.allow_unregistered_dialects = True
        module = _parse(text, ctx)
        funcs = {ir.StringAttr(op.attributes["sym_name"]).value: op for op in module.body.operations
                 if op.operation.name == "func.func" and "sym_name" in op.attributes}
        main = _find_main(module)
        flow = _Flow()
        env: dict[Any, int] = {}
        for arg in main.regions[0].blocks[0].arguments:
            env[arg] = flow.new(_bytes(arg.type))
            flow.materialized.add(env[arg])
        try:
            flow.returned = _walk(main.regions[0].blocks[0], env, flow, funcs, depth=0)
        except RecursionError:
            raise StableHLOError("@main calls itself (recursion): cannot count its ops") from None
    return _fuse(flow)


def _walk(block: Any, env: dict[Any, int], flow: _Flow, funcs: Mapping[str, Any], depth: int) -> list[int]:
    """Adds the ops of `block` to `flow`; returns the value ids its terminator returns."""
    from iree.compiler import ir

    if depth > 64:
        raise RecursionError
    returned: list[int] = []
    for op in block.operations:
        name = op.operation.name
        # A weight moved to the bundle's parameter archive (codegen/params.py) is still a constant.
        short = "constant" if name == "util.global.load" else name.split(".", 1)[-1]
        ids = [env.get(v) for v in op.operands]
        operands = [i for i in ids if i is not None]
        if name in _NO_DATA or short == "return":
            returned = operands
            continue
        if name in ("func.call", "call"):
            callee = funcs.get(ir.FlatSymbolRefAttr(op.attributes["callee"]).value)
            if callee is not None:
                inner = dict(zip(callee.regions[0].blocks[0].arguments, ids))
                outs = _walk(callee.regions[0].blocks[0], inner, flow, funcs, depth + 1)
                for r, i in zip(op.results, outs):
                    env[r] = i
                continue
        flow.ops[short] = flow.ops.get(short, 0) + 1
        _count(op, short, flow)
        results = [flow.new(_bytes(r.type)) for r in op.results]
        for r, i in zip(op.results, results):
            env[r] = i
        if short == "constant" and not _splat(op):
            flow.materialized.update(results)  # weights: read from memory
        if short not in ("reduce", "reduce_window", "sort", "scatter", "select_and_scatter"):
            for region in op.regions:  # loop and branch bodies: their arithmetic, counted once
                for blk in region.blocks:
                    sub = _Flow()
                    _walk(blk, {**env}, sub, funcs, depth + 1)
                    flow.flops += sub.flops
                    flow.trans += sub.trans
                    flow.contraction += sub.contraction
        flow.nodes.append(_Node(short, operands, results, short in ANCHORS))
    return returned


def _count(op: Any, short: str, flow: _Flow) -> None:
    if not op.results:
        return
    out = _elements(op.results[0].type)
    if short in TRANSCENDENTAL_WEIGHT:
        flow.flops += TRANSCENDENTAL_WEIGHT[short] * out
        flow.trans += out
    elif short in _ARITH:
        flow.flops += _ARITH[short] * out
    elif short in ("dot_general", "dot", "convolution"):
        f = 2.0 * out * (_kernel_per_output(op) if short == "convolution" else _contracted(op, short))
        flow.flops += f
        flow.contraction += f
    elif short == "reduce":
        n_in = max(1, len(op.operands) // 2)
        body = sum(1 for o in op.regions[0].blocks[0].operations if not o.operation.name.endswith("return"))
        flow.flops += sum(_elements(v.type) for v in list(op.operands)[:n_in]) * max(1, body)
    elif short == "reduce_window":
        window = _int_list(op, "window_dimensions")
        flow.flops += out * (math.prod(window) if window else 1)


def _contracted(op: Any, short: str) -> float:
    lhs = _shape(op.operands[0].type)
    if short == "dot":
        return float(lhs[-1]) if lhs else 1.0
    dims = dict(_DIMS.findall(str(op.attributes["dot_dimension_numbers"])))
    contracting = [int(d) for d in dims.get("lhs_contracting_dimensions", "").replace(" ", "").split(",") if d]
    return float(math.prod(lhs[d] for d in contracting)) if contracting else 1.0


def _kernel_per_output(op: Any) -> float:
    """Multiply-adds per output element: the kernel's size over its output features."""
    kernel = _shape(op.operands[1].type)
    text = str(op.attributes["dimension_numbers"])  # #stablehlo.conv<[b, 0, 1, f]x[0, 1, i, o]->[...]>
    m = re.search(r"x\[([^\]]*)\]", text)
    labels = [s.strip() for s in m.group(1).split(",")] if m else []
    o = labels.index("o") if "o" in labels else len(kernel) - 1
    return float(math.prod(kernel)) / max(1, kernel[o])


def _int_list(op: Any, name: str) -> list[int]:
    if name not in op.attributes:
        return []
    return [int(x) for x in re.findall(r"-?\d+", str(op.attributes[name]).split(":", 1)[-1])]


def _splat(op: Any) -> bool:
    from iree.compiler import ir

    try:
        return bool(ir.DenseElementsAttr(op.attributes["value"]).is_splat)
    except (ValueError, TypeError, KeyError):
        return _elements(op.results[0].type) <= 1


def _shape(t: Any) -> list[int]:
    from iree.compiler import ir

    if not isinstance(t, ir.RankedTensorType):
        return []
    rt = ir.RankedTensorType(t)
    return [int(d) if d >= 0 else 1 for d in rt.shape]


def _elements(t: Any) -> float:
    from iree.compiler import ir

    return float(math.prod(_shape(t))) if isinstance(t, ir.RankedTensorType) else 1.0


def _bytes(t: Any) -> float:
    from iree.compiler import ir

    if not isinstance(t, ir.RankedTensorType):
        return 0.0
    elem = str(ir.RankedTensorType(t).element_type)
    m = _ELEM_BITS.match(elem.replace("complex<", "").lstrip("u"))
    bits = int(m.group(1)) if m else 32
    bits *= 2 if elem.startswith("complex") else 1
    return _elements(t) * max(8, bits) / 8.0


# ------------------------------------------------------------------------------ fusion

def _fuse(flow: _Flow) -> HloCounts:
    producer = {r: n for n in flow.nodes for r in n.results}
    users: dict[int, list[_Node]] = {}
    for n in flow.nodes:
        for v in n.operands:
            users.setdefault(v, []).append(n)
    returned = set(flow.returned)
    tails = [n for n in flow.nodes if not n.anchor and any(r in returned for r in n.results)
             and not _shape_only_of_anchor(n, producer)]
    roots = [n for n in flow.nodes if n.anchor] + tails
    reads = {id(n): _sources(n.operands, producer, flow) for n in roots}
    out_ids = {id(n): set(n.results) for n in roots}
    merged: set[int] = set()
    for a in (n for n in flow.nodes if n.anchor):
        ends = _consumer_roots(a, users, producer, returned)
        if len(ends) == 1 and not ends[0].anchor and id(ends[0]) in reads and id(ends[0]) not in merged:
            tail = ends[0]  # an element-wise epilogue fuses into the anchor's dispatch
            merged.add(id(tail))
            reads[id(a)] = (reads[id(a)] | reads[id(tail)]) - set(a.results)
            out_ids[id(a)] = out_ids[id(tail)]
    live = [n for n in roots if id(n) not in merged]
    # A write costs twice a read: the line is read for ownership, then written back.
    traffic = sum(sum(flow.nbytes[v] for v in reads[id(n)]) + WRITE_WEIGHT * sum(
        flow.nbytes[v] for v in out_ids[id(n)] - reads[id(n)]) for n in live)
    touched = set(flow.materialized) | returned
    for n in live:
        touched |= reads[id(n)] | out_ids[id(n)]
    if not live:  # no op computes: the results are (views of) the arguments
        traffic = WRITE_WEIGHT * sum(flow.nbytes[v] for v in returned)
    ws = sum(flow.nbytes[v] for v in touched)
    return HloCounts(flow.flops, flow.trans, float(traffic), float(ws), len(live),
                     MappingProxyType(dict(sorted(flow.ops.items()))), flow.contraction)


def _shape_only_of_anchor(n: _Node, producer: Mapping[int, _Node]) -> bool:
    """A reshape/broadcast/convert chain straight from one anchor's result: no dispatch of its own."""
    while n.op in ("reshape", "bitcast_convert", "convert", "transpose") and len(n.operands) == 1:
        src = producer.get(n.operands[0])
        if src is None:
            return False
        if src.anchor:
            return True
        n = src
    return False


def _sources(values: Iterable[int], producer: Mapping[int, _Node], flow: _Flow) -> set[int]:
    """The materialized tensors reachable backwards from `values` through fusable ops."""
    out: set[int] = set()
    seen: set[int] = set()
    stack = list(values)
    while stack:
        v = stack.pop()
        if v in seen:
            continue
        seen.add(v)
        node = producer.get(v)
        if node is None or node.anchor or v in flow.materialized:
            if flow.nbytes.get(v, 0.0) > 0:
                out.add(v)
            continue
        stack.extend(node.operands)
    return out


def _consumer_roots(a: _Node, users: Mapping[int, list[_Node]], producer: Mapping[int, _Node],
                    returned: set[int]) -> list[_Node]:
    """The dispatch roots that read `a`'s result through fusable ops (anchors and returned tails)."""
    ends: dict[int, _Node] = {}
    stack = list(a.results)
    seen: set[int] = set()
    while stack:
        v = stack.pop()
        if v in seen:
            continue
        seen.add(v)
        if v in returned and v not in a.results:
            ends[id(producer[v])] = producer[v]
        for u in users.get(v, []):
            if u.anchor:
                ends[id(u)] = u
            else:
                stack.extend(u.results)
    if any(v in returned for v in a.results):
        ends[id(a)] = a
    return list(ends.values())
