"""Load-time fusion: per-head attention, as Neural-Engine-minded converters write it, run as one
`mx.fast.scaled_dot_product_attention` over all heads.

The pattern (ours in convert/encoder_program.py, and ml-ane-transformers' form) over q, k, v of
shape (B, D, S), channel axis 1:

    split(q, axis=1) -> q_h (B, Dh, S)   likewise k_h, v_h, H equal parts, one split per tensor
    scores_h  = matmul(q_h, k_h, transpose_x=True)            (B, Sq, Sk)
    [scores_h = mul(scores_h, c) or real_div(scores_h, c)]     c a constant scalar, the same for all h
    weights_h = softmax(scores_h, axis=-1)
    mix_h     = matmul(v_h, weights_h, transpose_y=True)      (B, Dh, Sq)
    concat([mix_0 .. mix_H-1], axis=1)                         (B, D, S)

and its tokens-first twin over (B, S, D), split/concat on the last axis, scores = q_h k_h^T and
mix_h = weights_h v_h. Every intermediate must be read only inside the pattern, head h must use
output h of each split, and all values must share one float dtype; anything else is left alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .graph import Block, Constants, Node
from .ops import fused
from .rewrite import UNKNOWN, GraphIndex, as_axis, bind, declared, declared_rank, derived_node, scalar, tensor_input
from .values import TensorType


@dataclass(frozen=True)
class _Head:
    nodes: tuple[Node, ...]  # the nodes of this head, consumed by the fusion
    sources: tuple[tuple[Node, int], ...]  # (split node, output index) of q_h, k_h, v_h
    scale: float


def fuse_attention(block: Block, constants: Constants) -> int:
    """Replace each per-head attention pattern of `block` by one fused node; returns how many."""
    fused_count = 0
    for concat in [n for n in block.nodes if n.op.name == "concat"]:
        graph = GraphIndex(block, constants)  # fresh: an earlier fusion changed the block
        replacement = _match(concat, graph)
        if replacement is None:
            continue
        node, consumed = replacement
        block.nodes = [node if n is concat else n for n in block.nodes if id(n) not in consumed]
        fused_count += 1
    return fused_count


def _match(concat: Node, graph: GraphIndex) -> tuple[Node, set[int]] | None:
    rank = declared_rank(concat)
    values = concat.params.get("values", [])
    interleave = graph.known(concat, "interleave", False)
    if rank != 3 or len(values) < 2 or interleave is UNKNOWN or np.asarray(interleave).any():
        return None
    axis = as_axis(graph.known(concat, "axis"), rank)
    if axis not in (1, 2):
        return None
    channels_first = axis == 1
    found = [_head(b.name, graph, channels_first) for b in values]
    heads = [h for h in found if h is not None]
    if len(heads) != len(found) or len({h.scale for h in heads}) != 1:
        return None
    splits = _common_splits(heads, graph, axis)
    if splits is None:
        return None
    consumed = {id(n) for h in heads for n in h.nodes} | {id(s) for s in splits}
    inputs = [tensor_input(s, "x") for s in splits]  # never None: _common_splits checked them
    bound = {role: bind(name) for role, name in zip(("query", "key", "value"), inputs) if name is not None}
    if len(bound) != 3:
        return None
    node = derived_node(
        concat,
        fused.MULTI_HEAD_ATTENTION,
        bound,
        {"heads": len(heads), "scale": heads[0].scale, "channels_first": channels_first},
    )
    return node, consumed


def _head(mixed: str | None, graph: GraphIndex, channels_first: bool) -> _Head | None:
    """The chain producing one head's output `mixed`, or None when it is not the pattern."""
    mix = graph.produced_by(mixed, "matmul")
    if mix is None or not graph.read_once(mixed):
        return None
    weights_role, value_role = ("y", "x") if channels_first else ("x", "y")
    if not _flags(graph, mix, transpose_x=False, transpose_y=channels_first):
        return None
    weights_name = tensor_input(mix, weights_role)
    softmax = graph.produced_by(weights_name, "softmax")
    if softmax is None or not graph.read_once(weights_name):
        return None
    if as_axis(graph.known(softmax, "axis", -1), 3) != 2:
        return None
    scores_name = tensor_input(softmax, "x")
    scale_node, scale, scores_name = _scale(scores_name, graph)
    scores = graph.produced_by(scores_name, "matmul")
    if scores is None or scale is None or not graph.read_once(scores_name):
        return None
    if not _flags(graph, scores, transpose_x=channels_first, transpose_y=not channels_first):
        return None
    names = (tensor_input(scores, "x"), tensor_input(scores, "y"), tensor_input(mix, value_role))
    found = [graph.producer.get(n) if n is not None and graph.read_once(n) else None for n in names]
    sources = tuple(s for s in found if s is not None and s[0].op.name == "split")
    if len(sources) != len(found):
        return None
    chain = (mix, softmax, scores) + ((scale_node,) if scale_node is not None else ())
    if not _one_float_dtype([declared(n) for n in chain] + [declared(s[0], s[1]) for s in sources]):
        return None
    return _Head(chain, sources, scale)


def _one_float_dtype(types: list[TensorType | None]) -> bool:
    known = [t for t in types if t is not None]
    if len(known) != len(types):
        return False
    dtypes = {t.dtype for t in known}
    return len(dtypes) == 1 and next(iter(dtypes)).kind == "f"


def _flags(graph: GraphIndex, matmul: Node, transpose_x: bool, transpose_y: bool) -> bool:
    got_x, got_y = graph.known(matmul, "transpose_x", False), graph.known(matmul, "transpose_y", False)
    return got_x is not UNKNOWN and got_y is not UNKNOWN and bool(got_x) == transpose_x and bool(got_y) == transpose_y


def _scale(name: str | None, graph: GraphIndex) -> tuple[Node | None, float | None, str | None]:
    """An optional multiply/divide of the scores by a constant scalar: (node, scale, scores name)."""
    for op in ("mul", "real_div"):
        node = graph.produced_by(name, op)
        if node is None or not graph.read_once(name):
            continue
        shapes = [graph.constant_shape(node, key) for key in ("x", "y")]
        if any(shape is not None and math.prod(shape) != 1 for shape in shapes):
            return None, None, None  # a constant tensor, not a scalar: not a plain rescaling
        x_value, y_value = graph.known(node, "x"), graph.known(node, "y")
        if op == "mul" and scalar(x_value) is not None and y_value is UNKNOWN:
            return node, scalar(x_value), tensor_input(node, "y")
        if scalar(y_value) is not None and x_value is UNKNOWN:
            factor = scalar(y_value)
            if op == "real_div":
                factor = 1.0 / factor if factor else None
            return node, factor, tensor_input(node, "x")
        return None, None, None
    return None, 1.0, name


def _common_splits(heads: list[_Head], graph: GraphIndex, axis: int) -> tuple[Node, Node, Node] | None:
    """The q, k and v split nodes shared by all heads, each cut into len(heads) equal parts along
    `axis` with head h taking part h; None otherwise."""
    splits = []
    for role in range(3):
        sources = [h.sources[role] for h in heads]
        split = sources[0][0]
        if any(s[0] is not split for s in sources) or [s[1] for s in sources] != list(range(len(heads))):
            return None
        if len(split.outputs) != len(heads) or as_axis(graph.known(split, "axis"), 3) != axis:
            return None
        shapes = {t.shape if t else None for t in (declared(split, i) for i in range(len(heads)))}
        shape = next(iter(shapes), None)
        if len(shapes) != 1 or shape is None or -1 in shape or tensor_input(split, "x") is None:
            return None
        splits.append(split)
    out_shapes = [t.shape if t else None for t in (declared(s) for s in splits)]
    head_dims = {shape[1] if axis == 1 else shape[2] for shape in out_shapes if shape is not None}
    if None in out_shapes or len({id(s) for s in splits}) != 3 or len(head_dims) != 1:
        return None
    return splits[0], splits[1], splits[2]
