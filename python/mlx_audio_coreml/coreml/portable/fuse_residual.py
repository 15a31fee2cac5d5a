"""Load-time fusion: a spatial conv (the channels-last node layout.py makes) whose output only an
`add` reads, as a residual sum `conv(x) + r`, run as one node (ops/fused.py `conv_add`).

Why: on the CPU host path the conv then writes r into its fresh output and accumulates its products
there, where unfused the add is one more MLX pass (two reads, one write, a new buffer) over the
activation: a converted Kokoro vocoder has a residual add after 24 of its 63 convs. Elsewhere (no
host path, a residual that broadcasts, another dtype) the node runs the conv, then the add.
"""

from __future__ import annotations

from .graph import Block, Constants, Node
from .ops import fused
from .rewrite import GraphIndex, bind, declared, derived_node, tensor_input


def fuse_conv_residual(block: Block, constants: Constants) -> int:
    """Replace each conv + residual add pair of `block` by one fused node (at the add's place, where
    both inputs are ready); returns how many."""
    graph = GraphIndex(block, constants)
    fused_nodes: dict[int, Node] = {}  # id(add node) -> its replacement
    consumed: set[int] = set()
    for node in block.nodes:
        found = _conv_and_residual(node, graph)
        if found is None or id(found[0]) in consumed:
            continue
        conv, residual = found
        params = {**conv.params, "residual": bind(residual)}
        fused_nodes[id(node)] = derived_node(conv, fused.CONV_ADD, params, conv.host_params, outputs=node.outputs)
        consumed.add(id(conv))
    block.nodes = [fused_nodes.get(id(n), n) for n in block.nodes if id(n) not in consumed]
    return len(fused_nodes)


def _conv_and_residual(node: Node, graph: GraphIndex) -> tuple[Node, str] | None:
    """(conv node, residual name) when `node` adds a value to a conv output that it alone reads, of
    the conv's declared float type and shape."""
    if node.op.name != "add":
        return None
    names = (tensor_input(node, "x"), tensor_input(node, "y"))
    for conv_name, residual in (names, names[::-1]):
        if conv_name is None or residual is None or conv_name == residual or not graph.read_once(conv_name):
            continue
        conv = graph.produced_by(conv_name, fused.CONV_TO_CHANNELS_LAST.name)
        out, total = (declared(conv) if conv is not None else None), declared(node)
        if conv is None or out is None or total is None or out.is_string or out.dtype.kind != "f":
            continue
        if out.dtype == total.dtype and out.shape == total.shape:
            return conv, residual
    return None
