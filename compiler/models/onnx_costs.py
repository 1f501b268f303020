"""Cost facts of a prepared (shape-inferred) ONNX graph, counted node by node like hlo.counts
counts StableHLO: matmul and convolution flops from their shapes, one flop per output element
elsewhere, weights plus graph inputs and outputs as memory traffic."""

from __future__ import annotations

import math
from typing import Any

from planc.compiler.ir.graph import CostFacts

__all__ = ["onnx_cost_facts"]

_ITEMSIZE = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 16: 2}
_SHAPE_ONLY = {"Shape", "Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity", "Constant", "Size"}


def _shapes(model: Any) -> dict[str, tuple[tuple[int, ...], int]]:
    out: dict[str, tuple[tuple[int, ...], int]] = {}
    g = model.graph
    for vi in (*g.input, *g.value_info, *g.output):
        tt = vi.type.tensor_type
        if tt.HasField("shape") and all(d.HasField("dim_value") for d in tt.shape.dim):
            out[vi.name] = (tuple(int(d.dim_value) for d in tt.shape.dim), int(tt.elem_type))
    for t in g.initializer:
        out[t.name] = (tuple(int(d) for d in t.dims), int(t.data_type))
    return out


def _nbytes(entry: tuple[tuple[int, ...], int] | None) -> float:
    if entry is None:
        return 0.0
    shape, elem = entry
    return float(math.prod(shape) * _ITEMSIZE.get(elem, 4))


def _node_flops(node: Any, shapes: dict[str, tuple[tuple[int, ...], int]]) -> tuple[float, bool]:
    """(flops, is_contraction) of one node; unknown shapes count nothing."""
    out = shapes.get(node.output[0]) if node.output else None
    if out is None:
        return 0.0, False
    n_out = math.prod(out[0])
    op = node.op_type
    if op == "Conv" and len(node.input) > 1 and node.input[1] in shapes:
        return 2.0 * n_out * math.prod(shapes[node.input[1]][0][1:]), True
    if op == "ConvTranspose" and len(node.input) > 1 and node.input[1] in shapes and node.input[0] in shapes:
        return 2.0 * math.prod(shapes[node.input[0]][0]) * math.prod(shapes[node.input[1]][0][1:]), True
    if op in ("MatMul", "Gemm") and node.input[0] in shapes:
        lhs = shapes[node.input[0]][0]
        trans_a = any(at.name == "transA" and at.i for at in node.attribute)
        k = (lhs[0] if trans_a else lhs[-1]) if lhs else 1
        return 2.0 * n_out * k, True
    if op in _SHAPE_ONLY:
        return 0.0, False
    return float(n_out), False


def onnx_cost_facts(model: Any) -> CostFacts:
    """CostFacts of a graph whose value_info shapes are all known (after planc's preparation)."""
    shapes = _shapes(model)
    flops = vector = 0.0
    dispatches = 0
    for node in model.graph.node:
        f, contraction = _node_flops(node, shapes)
        flops += f
        vector += 0.0 if contraction else f
        dispatches += int(node.op_type not in _SHAPE_ONLY)
    g = model.graph
    weights = sum(_nbytes(shapes.get(t.name)) for t in g.initializer)
    io = sum(_nbytes(shapes.get(v.name)) for v in (*g.input, *g.output))
    working = weights + sum(_nbytes(shapes.get(v.name)) for v in g.value_info) + io
    # IREE fuses elementwise chains into their producers: about one dispatch per 3 nodes.
    return CostFacts(flops, weights + io, max(1, dispatches // 3), working, vector)
