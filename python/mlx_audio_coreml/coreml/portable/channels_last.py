"""Load-time layout pass: keep channels-first activations channels-last between the ops that allow it.

Neural-Engine-minded programs keep activations as (N, C, 1, S) and write linear layers as 1x1
convs and layer norms over axis 1. MLX computes convolutions channels-last, multiplies (S, C) rows
by weights fastest, and has a fused layer norm only over the last axis. This pass stores such
values permuted instead: a value v "stored with perm P" is held as transpose(v, P), under a new
name. Starting from the outputs of spatial convs (which MLX produces channels-last anyway), the
permutation is carried through ops that are exact under it with an adjusted parameter:

- element-wise unary ops (and ones whose other parameters are scalar constants), casts;
- binary arithmetic between two values stored alike, with a constant (transposed at load), or
  with a computed value that broadcasts (a mask, a per-channel scale, or one of the same shape:
  transposed first);
- reductions that keep their axes (the axes renumbered);
- layer_norm over one axis, softmax, split, concat, squeeze, expand_dims, transpose (the axis or
  perm renumbered); a 1x1 conv becomes x @ W^T; a spatial conv reads channels-last input;
- the fused attention of fuse.py (its channels-first form becomes its tokens-first form).

Any other reader of the value (another op, a nested block, a program output) gets the logical
value back through one inserted transpose per value, so the program's results are unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .channels_last_ops import BINARY, UNARY
from .graph import Binding, Block, Constants, Node
from .ops import fused
from .rewrite import UNKNOWN, GraphIndex, as_axis, declared, declared_rank, derived_node, tensor_input

Perm = tuple[int, ...]


def channels_last_perm(rank: int) -> Perm:
    return (0,) + tuple(range(2, rank)) + (1,)  # (N, C, *D) -> (N, *D, C)


def inverse(perm: Perm) -> Perm:
    result = [0] * len(perm)
    for stored_axis, logical_axis in enumerate(perm):
        result[logical_axis] = stored_axis
    return tuple(result)


def is_identity(perm: Perm) -> bool:
    return perm == tuple(range(len(perm)))


def squeezed_perm(perm: Perm, axes: set[int]) -> Perm:
    """The perm left after removing logical `axes` (renumbered)."""
    return tuple(p - sum(a < p for a in axes) for p in perm if p not in axes)


def expanded_perm(perm: Perm, axes: list[int]) -> Perm:
    """A perm for the output of expand_dims(axes) of a value stored with `perm`: the input axes
    keep their stored order; each new unit axis goes just before the axis after it."""
    new = set(axes)
    kept = [i for i in range(len(perm) + len(axes)) if i not in new]  # input axis i -> output axis kept[i]
    order = [kept[p] for p in perm]
    for axis in sorted(axes, reverse=True):
        order.insert(order.index(axis + 1) if axis + 1 in order else len(order), axis)
    return tuple(order)


def apply_channels_last(block: Block, constants: Constants) -> int:
    """Run the pass over `block`; returns how many nodes now compute on permuted values."""
    return _LayoutPass(block, constants).run()


class _LayoutPass:
    def __init__(self, block: Block, constants: Constants) -> None:
        self.block = block
        self.constants = constants
        self.graph = GraphIndex(block, constants)
        self.stored: dict[str, tuple[str, Perm]] = {}  # logical name -> (stored name, perm)
        self.taken = set(self.graph.producer) | set(block.inputs) | set(constants.device)
        self.rewritten = 0
        self.pending: list[Node] = []  # transposes a rewritten node reads, put just before it
        self.moved_inputs: dict[tuple[str, Perm], str] = {}  # (computed value, perm) -> its transposed copy

    def run(self) -> int:
        nodes: list[Node] = []
        for node in self.block.nodes:
            replacement = self._rewrite(node)
            if replacement is not None:
                self.rewritten += 1
            nodes.extend(self.pending)
            self.pending = []
            nodes.append(replacement or node)
        self.block.nodes = self._materialize(nodes)
        return self.rewritten

    # --- bookkeeping ------------------------------------------------------------------------------

    def perm(self, name: str | None) -> Perm | None:
        return self.stored[name][1] if name in self.stored else None

    def stored_binding(self, name: str | None) -> list[Binding]:
        """The binding of a value `perm` found stored (callers check that first, so never None)."""
        if name is None:
            raise KeyError("a literal input has no stored value")
        return [Binding(name=self.stored[name][0])]

    def outputs(self, node: Node, perm: Perm) -> tuple[str, ...]:
        """Output names for `node` computing values stored with `perm` (logical when identity)."""
        if is_identity(perm):
            return node.outputs
        names = []
        for logical in node.outputs:
            name, suffix = f"{logical}.channels_last", 0
            while name in self.taken:
                suffix += 1
                name = f"{logical}.channels_last{suffix}"
            self.taken.add(name)
            self.stored[logical] = (name, perm)
            names.append(name)
        return tuple(names)

    def _materialize(self, nodes: list[Node]) -> list[Node]:
        """Insert, after each permuted value's producer, the transpose back to the logical value
        for the readers that need it."""
        needed = set(self.block.outputs)
        for node in nodes:
            needed.update(node.references)
        by_stored_name = {name: (logical, perm) for logical, (name, perm) in self.stored.items()}
        result: list[Node] = []
        for node in nodes:
            result.append(node)
            for name in node.outputs:
                logical, perm = by_stored_name.get(name, (None, ()))
                if logical in needed:
                    params, host = {"x": [Binding(name=name)]}, {"perm": inverse(perm)}
                    result.append(derived_node(node, fused.PERMUTE, params, host, (logical,)))
        return result

    # --- per-op rules -----------------------------------------------------------------------------

    def _rewrite(self, node: Node) -> Node | None:
        if node.ctx.blocks:
            return None
        if node.op.name == "conv":
            return self._conv(node)
        if not any(name in self.stored for name in node.references):
            return None
        rule = _RULES.get(node.op.name)
        if rule is None and node.op.name in UNARY:
            rule = _LayoutPass._unary
        elif rule is None and node.op.name in BINARY:
            rule = _LayoutPass._binary
        return rule(self, node) if rule is not None else None

    def _with(self, node: Node, rebind: dict[str, list[Binding]], host: dict[str, Any], perm: Perm) -> Node:
        params = {**node.params, **rebind}
        for key in host:
            params.pop(key, None)
        return derived_node(node, node.op, params, {**node.host_params, **host}, self.outputs(node, perm))

    def _unary(self, node: Node) -> Node | None:
        x = tensor_input(node, "x")
        others = [b for key, bindings in node.params.items() if key != "x" for b in bindings]
        perm = self.perm(x)
        if perm is None or any(_tensor_valued(self.graph.constant_of(b)) for b in others):
            return None
        return self._with(node, {"x": self.stored_binding(x)}, {}, perm)

    def _binary(self, node: Node) -> Node | None:
        x, y = tensor_input(node, "x"), tensor_input(node, "y")
        px, py = self.perm(x), self.perm(y)
        if px is not None and py is not None:
            if px != py:
                return None
            return self._with(node, {"x": self.stored_binding(x), "y": self.stored_binding(y)}, {}, px)
        key, other = ("x", "y") if px is not None else ("y", "x")
        perm = px or py
        if perm is None:  # neither input is stored
            return None
        constant = self.graph.known(node, other)
        if constant is None or declared_rank(node) != len(perm):
            return None
        if constant is UNKNOWN:
            moved = self._permuted_broadcast(node, tensor_input(node, other), perm)
        else:
            moved = self._permuted_constant(np.asarray(constant), perm)
        if moved is None:
            return None
        return self._with(node, {key: self.stored_binding(tensor_input(node, key)), other: moved}, {}, perm)

    def _permuted_constant(self, value: np.ndarray, perm: Perm) -> list[Binding] | None:
        if value.ndim > len(perm) or value.dtype.kind not in "biuf":
            return None
        full = value.reshape((1,) * (len(perm) - value.ndim) + value.shape)
        moved = np.ascontiguousarray(np.transpose(full, perm))
        name = f"constant.channels_last{len(self.taken)}"
        self.taken.add(name)
        self.constants.add(name, moved, moved)
        return [Binding(name=name)]

    def _permuted_broadcast(self, node: Node, name: str | None, perm: Perm) -> list[Binding] | None:
        """A computed operand that broadcasts against `node`'s output (a mask (N, 1, T), a per-channel
        scale (N, C, 1)), transposed to `perm` by a node put before `node` (once per value): moving
        the small operand keeps the large one stored as it is. An operand of the output's own shape
        is moved too (a view the op reads, as it would read the stored one moved back): a residual
        sum whose running value arrives channels-first (a vocoder stage after its transposed conv)
        then stays channels-last from there on, instead of every later conv output being moved back."""
        found = self.graph.producer.get(name) if name is not None else None
        if name is None or found is None or name in self.stored:
            return None
        shape, out = declared(*found), declared(node)
        if shape is None or out is None or shape.shape is None or out.shape is None or len(shape.shape) != len(perm):
            return None
        if -1 in shape.shape or -1 in out.shape or int(np.prod(shape.shape)) > int(np.prod(out.shape)):
            return None
        if int(np.prod(shape.shape)) == int(np.prod(out.shape)) and tuple(shape.shape) != tuple(out.shape):
            return None
        moved = self.moved_inputs.get((name, perm))
        if moved is None:
            moved, suffix = f"{name}.broadcast_channels_last", 0
            while moved in self.taken:
                suffix += 1
                moved = f"{name}.broadcast_channels_last{suffix}"
            self.taken.add(moved)
            self.moved_inputs[(name, perm)] = moved
            params, host = {"x": [Binding(name=name)]}, {"perm": perm}
            self.pending.append(derived_node(found[0], fused.PERMUTE, params, host, (moved,)))
        return [Binding(name=moved)]

    def _reduce(self, node: Node) -> Node | None:
        """A reduction keeping its axes (keep_dims): the axes renumbered to where x stores them."""
        x = tensor_input(node, "x")
        perm, axes = self.perm(x), self.graph.known(node, "axes")
        keep = self.graph.known(node, "keep_dims", False)
        if perm is None or axes is UNKNOWN or axes is None or keep is UNKNOWN or not bool(np.asarray(keep)):
            return None
        logical = [as_axis(a, len(perm)) for a in np.asarray(axes).reshape(-1)]
        if any(a is None for a in logical):
            return None
        stored_axes = np.array(sorted(perm.index(a) for a in logical if a is not None), dtype=np.int32)
        return self._with(node, {"x": self.stored_binding(x)}, {"axes": stored_axes}, perm)

    def _axis_op(self, node: Node, key: str, default: Any = UNKNOWN) -> Node | None:
        """An op over one axis (`key`) of x: the axis renumbered to where x stores it."""
        x = tensor_input(node, "x")
        perm = self.perm(x)
        axes = self.graph.known(node, key, default)
        if perm is None or axes is UNKNOWN or axes is None or np.asarray(axes).size != 1:
            return None
        axis = as_axis(axes, len(perm))
        if axis is None or not 0 <= axis < len(perm):
            return None
        moved = np.asarray(perm.index(axis), dtype=np.int32).reshape(np.asarray(axes).shape)
        return self._with(node, {"x": self.stored_binding(x)}, {key: moved}, perm)

    def _layer_norm(self, node: Node) -> Node | None:
        return self._axis_op(node, "axes")

    def _softmax(self, node: Node) -> Node | None:
        return self._axis_op(node, "axis", -1)

    def _split(self, node: Node) -> Node | None:
        return self._axis_op(node, "axis")

    def _concat(self, node: Node) -> Node | None:
        names = [b.name for b in node.params.get("values", [])]
        perms = {self.perm(n) for n in names}
        interleave = self.graph.known(node, "interleave", False)
        axis = self.graph.known(node, "axis")
        if len(perms) != 1 or interleave is UNKNOWN or np.asarray(interleave).any():
            return None
        perm = perms.pop()
        if perm is None:
            return None
        axis = as_axis(axis, len(perm))
        if axis is None:
            return None
        values = [b for n in names for b in self.stored_binding(n)]
        return self._with(node, {"values": values}, {"axis": np.int32(perm.index(axis))}, perm)

    def _squeeze(self, node: Node) -> Node | None:
        x = tensor_input(node, "x")
        perm, axes = self.perm(x), self.graph.known(node, "axes")
        if perm is None or axes is UNKNOWN or axes is None:
            return None
        logical = {as_axis(a, len(perm)) for a in np.asarray(axes).reshape(-1)}
        if None in logical:
            return None
        logical = {a for a in logical if a is not None}  # narrowed for the type checker
        stored_axes = np.array(sorted(perm.index(a) for a in logical), dtype=np.int32)
        return self._with(node, {"x": self.stored_binding(x)}, {"axes": stored_axes}, squeezed_perm(perm, logical))

    def _expand_dims(self, node: Node) -> Node | None:
        x = tensor_input(node, "x")
        perm, axes = self.perm(x), self.graph.known(node, "axes")
        if perm is None or axes is UNKNOWN or axes is None:
            return None
        out_rank = len(perm) + np.asarray(axes).size
        found = [as_axis(a, out_rank) for a in np.asarray(axes).reshape(-1)]
        new = sorted(a for a in found if a is not None)
        if len(new) != len(found):
            return None
        out_perm = expanded_perm(perm, new)
        stored_axes = np.array(sorted(out_perm.index(a) for a in new), dtype=np.int32)
        return self._with(node, {"x": self.stored_binding(x)}, {"axes": stored_axes}, out_perm)

    def _transpose(self, node: Node) -> Node | None:
        """transpose(v, Q) of a stored transpose(v, P) is transpose(stored, R), R[i] = P.index(Q[i]):
        computed into the logical value (a free view when R is the identity)."""
        x = tensor_input(node, "x")
        perm, order = self.perm(x), self.graph.known(node, "perm")
        if perm is None or order is UNKNOWN or order is None:
            return None
        found = [as_axis(a, len(perm)) for a in np.asarray(order).reshape(-1)]
        logical = [a for a in found if a is not None]
        if len(logical) != len(found):
            return None
        moved = np.array([perm.index(a) for a in logical], dtype=np.int32)
        return self._with(node, {"x": self.stored_binding(x)}, {"perm": moved}, tuple(range(len(perm))))

    def _attention(self, node: Node) -> Node | None:
        names = [tensor_input(node, role) for role in ("query", "key", "value")]
        if any(self.perm(n) != (0, 2, 1) for n in names):
            return None
        rebind = {role: self.stored_binding(n) for role, n in zip(("query", "key", "value"), names)}
        flipped = not node.host_params["channels_first"]
        return derived_node(
            node,
            node.op,
            {**node.params, **rebind},
            {**node.host_params, "channels_first": flipped},
            self.outputs(node, (0, 2, 1)),
        )

    def _conv(self, node: Node) -> Node | None:
        """A spatial conv leaves its output channels-last (and reads channels-last input as is);
        a 1x1 conv of channels-last input becomes x @ W^T."""
        x, rank = tensor_input(node, "x"), declared_rank(node)
        weight_shape = self.graph.constant_shape(node, "weight")
        if rank is None or rank < 3 or weight_shape is None or len(weight_shape) != rank:
            return None
        cl = channels_last_perm(rank)
        perm = self.perm(x)
        if perm is not None and perm != cl:
            return None
        rebind = {"x": self.stored_binding(x)} if perm is not None else {}
        if _is_pointwise(node, self.graph, weight_shape):
            if perm is None:
                return None
            params = {k: v for k, v in {**node.params, **rebind}.items() if k in ("x", "weight", "bias")}
            return derived_node(node, fused.POINTWISE_CHANNELS_LAST, params, {}, self.outputs(node, cl))
        host = {**node.host_params, "input_channels_last": perm is not None}
        return derived_node(node, fused.CONV_TO_CHANNELS_LAST, {**node.params, **rebind}, host, self.outputs(node, cl))


_RULES = {
    "layer_norm": _LayoutPass._layer_norm,
    "softmax": _LayoutPass._softmax,
    "split": _LayoutPass._split,
    "concat": _LayoutPass._concat,
    "squeeze": _LayoutPass._squeeze,
    "expand_dims": _LayoutPass._expand_dims,
    "transpose": _LayoutPass._transpose,
    fused.MULTI_HEAD_ATTENTION.name: _LayoutPass._attention,
    **{f"reduce_{kind}": _LayoutPass._reduce for kind in ("sum", "mean", "max", "min", "prod", "sum_square")},
}


def _tensor_valued(value: Any) -> bool:
    """A parameter that is computed, or a constant with more than one element (may broadcast)."""
    if value is UNKNOWN:
        return True
    return not isinstance(value, str) and value is not None and np.asarray(value).size > 1


def _is_pointwise(node: Node, graph: GraphIndex, weight_shape: tuple[int, ...]) -> bool:
    """A 1x1, stride-1, unpadded, ungrouped conv: a matrix product over the channel axis."""
    strides, groups = graph.known(node, "strides"), graph.known(node, "groups", 1)
    pad_type, pad = graph.known(node, "pad_type", "valid"), graph.known(node, "pad")
    if any(v is UNKNOWN for v in (strides, groups, pad_type, pad)):
        return False
    unpadded = str(np.asarray(pad_type).reshape(-1)[0]) != "custom" or pad is None or not np.asarray(pad).any()
    return (
        all(k == 1 for k in weight_shape[2:])
        and int(np.asarray(groups).reshape(-1)[0]) == 1
        and unpadded
        and (strides is None or all(int(s) == 1 for s in np.asarray(strides).reshape(-1)))
    )
