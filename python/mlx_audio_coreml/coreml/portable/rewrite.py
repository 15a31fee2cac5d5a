"""What the load-time rewrites (fuse.py, layout.py) need to read a block: who produces each value,
how often each is read, which parameters are known at load, and how to build replacement nodes."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any

import numpy as np

from .graph import Binding, Block, Constants, Node
from .ops import OpDef
from .values import TensorType

UNKNOWN = object()  # a parameter whose value is only known when the program runs


class GraphIndex:
    """Producers and reader counts of the values of one block (nested blocks count as readers)."""

    def __init__(self, block: Block, constants: Constants) -> None:
        self.block = block
        self.constants = constants
        self.producer: dict[str, tuple[Node, int]] = {}
        self.readers: Counter[str] = Counter(block.outputs)
        for node in block.nodes:
            for index, name in enumerate(node.outputs):
                self.producer[name] = (node, index)
            self.readers.update(node.references)

    def produced_by(self, name: str | None, op: str) -> Node | None:
        """The node of type `op` producing `name` as its only output, else None."""
        found = self.producer.get(name) if name is not None else None
        if found is None or found[0].op.name != op or len(found[0].outputs) != 1:
            return None
        return found[0]

    def read_once(self, name: str | None) -> bool:
        return name is not None and self.readers[name] == 1

    def known(self, node: Node, key: str, default: Any = None) -> Any:
        """A parameter's host value when known at load (literal or constant); `default` when the
        program leaves it out; UNKNOWN when it is computed."""
        if key in node.host_params:
            return node.host_params[key]
        bindings = node.params.get(key)
        if not bindings:
            return default
        if len(bindings) != 1:
            return UNKNOWN
        return self.constant_of(bindings[0])

    def constant_shape(self, node: Node, key: str) -> tuple[int, ...] | None:
        """The shape of a parameter known at load, without copying its value to the host."""
        bindings = node.params.get(key)
        if not bindings or len(bindings) != 1:
            return None
        name = bindings[0].name
        if name is None:
            return tuple(np.shape(bindings[0].host))
        value = self.constants.device.get(name)
        return tuple(value.shape) if value is not None and hasattr(value, "shape") else None

    def constant_of(self, binding: Binding) -> Any:
        if binding.name is None:
            return binding.host
        return self.constants.host(binding.name) if binding.name in self.constants else UNKNOWN


def tensor_input(node: Node, key: str) -> str | None:
    """The value name bound to a single-argument parameter, None for a literal or a missing one."""
    bindings = node.params.get(key)
    return bindings[0].name if bindings and len(bindings) == 1 else None


def declared(node: Node, index: int = 0) -> TensorType | None:
    types = node.ctx.output_types
    return types[index] if index < len(types) else None


def declared_rank(node: Node, index: int = 0) -> int | None:
    ttype = declared(node, index)
    return None if ttype is None or ttype.shape is None else len(ttype.shape)


def scalar(value: Any) -> float | None:
    """A one-element numeric host value as float, else None."""
    if value is UNKNOWN or value is None or isinstance(value, str):
        return None
    array = np.asarray(value)
    if array.size != 1 or array.dtype.kind not in "fiu":
        return None
    return float(array.reshape(-1)[0])


def as_axis(value: Any, rank: int) -> int | None:
    """A known single axis, normalized to [0, rank), else None."""
    if value is UNKNOWN or value is None:
        return None
    array = np.asarray(value).reshape(-1)
    if array.size != 1 or array.dtype.kind not in "iu":
        return None
    axis = int(array[0])
    return axis + rank if axis < 0 else axis


def derived_node(
    template: Node,
    op: OpDef,
    params: dict[str, list[Binding]],
    host_params: dict[str, Any],
    outputs: tuple[str, ...] | None = None,
) -> Node:
    """A node running `op` in `template`'s place: same name and declared outputs, a fresh memo."""
    ctx = replace(template.ctx, op_type=op.name, memo={}, blocks=(), run_block=None)
    return Node(op, template.name, params, outputs or template.outputs, ctx, host_params)


def bind(name: str) -> list[Binding]:
    return [Binding(name=name)]
