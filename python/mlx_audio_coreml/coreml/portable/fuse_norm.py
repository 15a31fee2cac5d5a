"""Load-time fusion: a masked instance norm with an affine (AdaIN as vocoders' converted programs spell
it in twelve MIL ops), with the activation and the mask multiply that may follow it, becomes one node
(ops/masked_norm.py). The pattern, over one reduced axis and a mask m broadcast along it:

    mean = reduce_sum(x * m, axes=[a], keep_dims) / count
    d    = x - mean
    var  = reduce_sum((d * m) * (d * m), axes=[a], keep_dims) / count
    y    = (d * rsqrt(var, epsilon)) * scale + shift
    [y = portable.snake(y, alpha, inv_alpha) or leaky_relu(y, alpha)]   read only here
    [y = y * gate]                                                       read only here

(either operand order of each mul and add). Every intermediate must be read only inside the pattern
(d twice); a norm shared by several affines is first copied per affine (fuse_norm_shared.py). Why: on the CPU the twelve ops make about ten passes over the activation; the fused op makes
two to three (ops/masked_norm.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .fuse_norm_shared import unshare_norms
from .graph import Binding, Block, Constants, Node
from .ops.fused import internal_op
from .ops.masked_norm import masked_norm
from .rewrite import UNKNOWN, GraphIndex, bind, derived_node, tensor_input

MASKED_NORM = internal_op("portable.masked_norm", masked_norm, static=("axis", "activation"))


@dataclass(frozen=True)
class _Norm:
    params: dict[str, list[Binding]]
    axis: int
    nodes: tuple[Node, ...]  # consumed, the matched add excluded


def fuse_masked_norm(block: Block, constants: Constants) -> int:
    """Replace each masked instance norm + affine pattern of `block` (with what follows it) by one
    fused node; returns how many."""
    unshare_norms(block, constants, _stats_nodes)
    graph = GraphIndex(block, constants)
    replaced: dict[int, Node] = {}
    consumed: set[int] = set()
    for node in block.nodes:
        if id(node) in consumed or (norm := _match_affine(node, graph)) is None:
            continue
        params, host_params, last = dict(norm.params), {"axis": norm.axis, "activation": "none"}, node
        activation = _reader(last, graph, ("portable.snake", "leaky_relu"))
        if activation is not None:
            host_params["activation"] = activation.op.name
            params.update({k: v for k, v in activation.params.items() if k != "x"})
            consumed.add(id(last))
            last = activation
        gate = _gate(last, graph)
        if gate is not None:
            params["gate"], consumed_node = gate
            consumed.add(id(last))
            last = consumed_node
        consumed.update(id(n) for n in norm.nodes)
        consumed.add(id(node))
        consumed.discard(id(last))
        replaced[id(last)] = derived_node(last, MASKED_NORM, params, host_params)
    block.nodes = [replaced.get(id(n), n) for n in block.nodes if id(n) not in consumed or id(n) in replaced]
    return len(replaced)


def _pairs(node: Node | None) -> list[tuple[str, str]]:
    """(a, b) and (b, a) for a binary node on two named values, else []."""
    if node is None:
        return []
    a, b = tensor_input(node, "x"), tensor_input(node, "y")
    if a is None or b is None or len(node.outputs) != 1:
        return []
    return [(a, b), (b, a)]


def _only(name: str, op: str, graph: GraphIndex, readers: int = 1) -> Node | None:
    node = graph.produced_by(name, op)
    return node if node is not None and graph.readers[name] == readers else None


def _reader(node: Node, graph: GraphIndex, ops: tuple[str, ...]) -> Node | None:
    """The one node reading `node`'s output (as its `x`), when that node is of one of `ops`."""
    name = node.outputs[0]
    if graph.readers[name] != 1 or name in graph.block.outputs:
        return None
    found = [n for n in graph.block.nodes if name in n.references]
    return found[0] if len(found) == 1 and found[0].op.name in ops and tensor_input(found[0], "x") == name else None


def _gate(node: Node, graph: GraphIndex) -> tuple[list[Binding], Node] | None:
    """A mul of `node`'s output by another value, read only there: (the other operand, the mul)."""
    name = node.outputs[0]
    if graph.readers[name] != 1 or name in graph.block.outputs:
        return None
    found = [n for n in graph.block.nodes if name in n.references]
    if len(found) != 1 or found[0].op.name != "mul":
        return None
    for a, b in _pairs(found[0]):
        if a == name and b != name:
            return bind(b), found[0]
    return None


def _match_affine(node: Node, graph: GraphIndex) -> _Norm | None:
    """add(mul(mul(d, r), scale), shift) with r = rsqrt(var) and d, var the masked statistics."""
    if node.op.name != "add":
        return None
    for scaled_name, shift in _pairs(node):
        scaled = _only(scaled_name, "mul", graph)
        for normed_name, scale in _pairs(scaled):
            normed = _only(normed_name, "mul", graph)
            for d_name, r_name in _pairs(normed):
                stats = _match_stats(d_name, r_name, graph)
                if stats is not None:
                    params = {**stats.params, "scale": bind(scale), "shift": bind(shift)}
                    assert scaled is not None and normed is not None
                    return _Norm(params, stats.axis, (*stats.nodes, scaled, normed))
    return None


def _match_stats(d_name: str, r_name: str, graph: GraphIndex) -> _Norm | None:
    """d = x - sum(x m)/count and r = rsqrt(sum((d m)^2)/count): x, mask, count, epsilon, the axis."""
    rsqrt, sub = _only(r_name, "rsqrt", graph), _only(d_name, "sub", graph, readers=2)
    var = _only(tensor_input(rsqrt, "x") or "", "real_div", graph) if rsqrt is not None else None
    if rsqrt is None or sub is None or var is None or len(rsqrt.params.get("epsilon", [None])) != 1:
        return None
    x, mean_name = tensor_input(sub, "x"), tensor_input(sub, "y")
    mean = _only(mean_name or "", "real_div", graph)
    count = tensor_input(var, "y")
    if x is None or mean is None or count is None or tensor_input(mean, "y") != count:
        return None
    sum_sq, axis_sq = _masked_sum(tensor_input(var, "x"), graph)
    sum_x, axis_x = _masked_sum(tensor_input(mean, "x"), graph)
    if sum_sq is None or sum_x is None or axis_sq is None or axis_sq != axis_x:
        return None
    square = _only(tensor_input(sum_sq, "x") or "", "mul", graph)
    if square is None or tensor_input(square, "x") != tensor_input(square, "y"):
        return None
    d_masked = _only(tensor_input(square, "x") or "", "mul", graph, readers=2)
    x_masked = _only(tensor_input(sum_x, "x") or "", "mul", graph)
    mask = next((m for a, m in _pairs(d_masked) if a == d_name), None)
    if mask is None or d_masked is None or x_masked is None or (x, mask) not in _pairs(x_masked):
        return None
    params = {"x": bind(x), "mask": bind(mask), "count": bind(count)}
    if "epsilon" in rsqrt.params:
        params["epsilon"] = rsqrt.params["epsilon"]
    nodes = (x_masked, sum_x, mean, sub, d_masked, square, sum_sq, var, rsqrt)
    return _Norm(params, axis_sq, nodes)


def _stats_nodes(d_name: str, r_name: str, graph: GraphIndex) -> tuple[Node, ...] | None:
    found = _match_stats(d_name, r_name, graph)
    return None if found is None else found.nodes


def _masked_sum(name: str | None, graph: GraphIndex) -> tuple[Node | None, int | None]:
    """A reduce_sum over one known axis, keeping dims, read once: (node, axis)."""
    node = _only(name or "", "reduce_sum", graph)
    if node is None:
        return None, None
    axes, keep = graph.known(node, "axes"), graph.known(node, "keep_dims", False)
    if axes is UNKNOWN or axes is None or keep is UNKNOWN or not bool(np.asarray(keep)):
        return None, None
    flat = np.asarray(axes).reshape(-1)
    return (node, int(flat[0])) if flat.size == 1 else (None, None)
