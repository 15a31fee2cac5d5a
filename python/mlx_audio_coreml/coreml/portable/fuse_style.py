"""Load-time rewrite: the linears that read one computed input with constant weights and biases
(Kokoro's AdaIN style products, `style @ W + b` per norm) become one `portable.stacked_linear` node
(ops/stacked.py) at the first one's place. A member's `expand_dims` then `split` (scale and shift),
each read only there, are absorbed too, and after them, per split output, a chain of nodes each read
only by the next: an `add` of a one-element constant (AdaIN's 1 + scale) or a `portable.permute`
(channels_last.py's layout change).

Why: a short sentence's vocoder call runs ~640 nodes; these were ~330 of them (58 products, 58
expand_dims, 58 splits, 58 adds, ~100 permutes), each paying the interpreter's and MLX's per-node
cost for a few kB of work.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import mlx.core as mx
import numpy as np

from .graph import Binding, Block, Constants, Node
from .ops import OpDef
from .ops.stacked import Member, Step, stacked_linear
from .rewrite import UNKNOWN, GraphIndex, as_axis, declared_rank, derived_node, tensor_input
from .values import TensorType

STACKED_LINEAR = OpDef(
    "portable.stacked_linear",
    stacked_linear,
    frozenset(),
    frozenset({"weights", "biases", "addends"}),
    foldable=False,
)


@dataclass
class _Stack:
    """What the stacked node of one group computes and replaces."""

    members: list[Member] = field(default_factory=list)
    consumed: list[Node] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    types: list[TensorType | None] = field(default_factory=list)
    addends: list[Binding] = field(default_factory=list)


def fuse_style_products(block: Block, constants: Constants) -> int:
    """Stack each group of two or more such linears of `block`; returns how many linears were stacked."""
    graph = GraphIndex(block, constants)
    groups: dict[str, list[Node]] = defaultdict(list)
    for node in block.nodes:
        x = _stackable_input(node, constants)
        if x is not None:
            groups[x].append(node)
    replaced: dict[int, Node] = {}
    consumed: set[int] = set()
    stacked = 0
    for x, members in groups.items():
        if len(members) < 2 or len({_weight_shape(m, constants)[1] for m in members}) != 1:
            continue
        stack = _Stack()
        for member in members:
            _absorb(member, graph, stack)
        params = {
            "x": [Binding(name=x)],
            "weights": [m.params["weight"][0] for m in members],
            "biases": [m.params["bias"][0] for m in members],
            "addends": stack.addends,
        }
        hosted = {"members": tuple(stack.members)}
        node = derived_node(members[0], STACKED_LINEAR, params, hosted, outputs=tuple(stack.outputs))
        node.ctx.output_types = tuple(stack.types)
        node.ctx.constant_params = frozenset({"weights", "biases", "addends", "weight", "bias"})
        replaced[id(members[0])] = node
        consumed.update(id(n) for n in stack.consumed)
        stacked += len(members)
    block.nodes = [replaced.get(id(n), n) for n in block.nodes if id(n) in replaced or id(n) not in consumed]
    return stacked


def _stackable_input(node: Node, constants: Constants) -> str | None:
    """x's name when `node` is a float32 linear of a computed x by a constant 2-D weight and bias."""
    if node.op.name != "linear" or set(node.params) != {"x", "weight", "bias"}:
        return None
    x, weight, bias = (tensor_input(node, k) for k in ("x", "weight", "bias"))
    if x is None or weight is None or bias is None or x in constants:
        return None
    if weight not in constants or bias not in constants:
        return None
    w, b, out = constants.device[weight], constants.device[bias], node.ctx.output_types
    if getattr(w, "ndim", 0) != 2 or getattr(b, "ndim", 0) != 1 or w.dtype != b.dtype or not out or out[0] is None:
        return None
    return x if str(out[0].dtype) == "float32" and w.dtype == mx.float32 else None


def _weight_shape(node: Node, constants: Constants) -> tuple[int, ...]:
    """The shape of a stackable linear's constant weight, (out, in)."""
    return tuple(constants.device[tensor_input(node, "weight") or ""].shape)


def _absorb(linear: Node, graph: GraphIndex, stack: _Stack) -> None:
    """Add `linear` to `stack`: its member spec, the nodes it replaces (the linear; its expand_dims
    and split when each is read only by the next, then each split output's chain) and outputs."""
    width = _weight_shape(linear, graph.constants)[0]
    split = _expand_then_split(linear, graph)
    if split is None:
        stack.members.append((width, None, 0, 1, ((),)))
        stack.consumed.append(linear)
        stack.outputs.append(linear.outputs[0])
        stack.types.append(linear.ctx.output_types[0])
        return
    axes, axis, expand, node = split
    chains = tuple(_chain(name, node.ctx.output_types[i], graph, stack) for i, name in enumerate(node.outputs))
    stack.members.append((width, axes, axis, len(node.outputs), chains))
    stack.consumed.extend([linear, expand, node])


def _expand_then_split(linear: Node, graph: GraphIndex) -> tuple[tuple[int, ...], int, Node, Node] | None:
    """(expand axes, split axis, expand node, split node) when the linear's output is read only by an
    expand_dims read only by an even split (num_splits known), all known at load."""
    rank = declared_rank(linear)
    expand = _only_reader(linear.outputs[0], graph, "expand_dims")
    if rank is None or expand is None or set(expand.params) != {"x", "axes"}:
        return None
    split = _only_reader(expand.outputs[0], graph, "split")
    axes = graph.known(expand, "axes")
    if split is None or axes is UNKNOWN or axes is None or graph.known(split, "split_sizes") is not None:
        return None
    splits = graph.known(split, "num_splits")
    axis = as_axis(graph.known(split, "axis"), rank + np.asarray(axes).size)
    if splits is UNKNOWN or splits is None or axis is None or int(np.asarray(splits)) != len(split.outputs):
        return None
    return tuple(int(a) for a in np.asarray(axes).reshape(-1)), axis, expand, split


def _chain(name: str, ttype: TensorType | None, graph: GraphIndex, stack: _Stack) -> tuple[Step, ...]:
    """The steps of the chain read on from split output `name` (consumed into `stack`); records the
    chain's last value as one of the stacked node's outputs."""
    steps: list[Step] = []
    while True:
        node = _only_reader(name, graph, "portable.permute") or _only_reader(name, graph, "add")
        if node is None or len(node.outputs) != 1:
            break
        if node.op.name == "portable.permute":
            steps.append(("permute", tuple(int(p) for p in node.host_params["perm"])))
        else:
            addend = _constant_addend(node, name, graph)
            if addend is None:
                break
            steps.append(("add", len(stack.addends)))
            stack.addends.append(addend)
        stack.consumed.append(node)
        name, ttype = node.outputs[0], node.ctx.output_types[0]
    stack.outputs.append(name)
    stack.types.append(ttype)
    return tuple(steps)


def _constant_addend(node: Node, name: str, graph: GraphIndex) -> Binding | None:
    """The other operand of `add` node when it is a named one-element float32 constant."""
    x, y = tensor_input(node, "x"), tensor_input(node, "y")
    other = y if x == name else x if y == name else None
    if other is None or other == name or other not in graph.constants:
        return None
    value = graph.constants.device[other]
    ok = isinstance(value, mx.array) and value.size == 1 and value.dtype == mx.float32
    return Binding(name=other) if ok else None


def _only_reader(name: str, graph: GraphIndex, op: str) -> Node | None:
    """The node of type `op` that alone reads `name`, else None."""
    if not graph.read_once(name):
        return None
    readers = [n for n in graph.block.nodes if name in n.references]
    return readers[0] if len(readers) == 1 and readers[0].op.name == op else None
