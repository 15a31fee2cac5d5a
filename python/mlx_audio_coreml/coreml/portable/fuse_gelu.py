"""Load-time fusion: a product by weights (MIL `linear`, or the channels-last 1x1 and spatial
convs that layout.py makes) whose output only an exact GELU reads, run as one node (ops/fused.py
`product_gelu`).

Why: on the CPU host path the GELU can then work in place on the product's fresh output, each
block of rows while it is still in cache, as the product encoder's MLP does. Unfused, the GELU
must copy its input (another op could read it), which in tiny.en's encoder meant a second 9 MB
buffer per block and, with MLX's 32 MB buffer cache, fresh pages for it on every prediction.
Elsewhere (a GPU, float16, a compiled trace) the fused node runs the two ops exactly as before.
"""

from __future__ import annotations

from .graph import Block, Constants, Node
from .ops import fused
from .rewrite import GraphIndex, declared, derived_node, tensor_input
from .values import TensorType

_PRODUCTS = ("linear", fused.POINTWISE_CHANNELS_LAST.name, fused.CONV_TO_CHANNELS_LAST.name)


def fuse_product_gelu(block: Block, constants: Constants) -> int:
    """Replace each product + exact GELU pair of `block` by one fused node; returns how many."""
    graph = GraphIndex(block, constants)
    fused_nodes: dict[int, Node] = {}  # id(gelu node) -> its replacement
    consumed: set[int] = set()
    for node in block.nodes:
        product = _product_before(node, graph)
        if product is None:
            continue
        host_params = {**product.host_params, "product": product.op.name}
        fused_nodes[id(node)] = derived_node(
            product, fused.PRODUCT_GELU, product.params, host_params, outputs=node.outputs
        )  # the product's constant parameters and declared type (a GELU keeps shape and dtype)
        consumed.add(id(product))
    block.nodes = [fused_nodes.get(id(n), n) for n in block.nodes if id(n) not in consumed]
    return len(fused_nodes)


def _product_before(node: Node, graph: GraphIndex) -> Node | None:
    """The product feeding `node` when `node` is an exact GELU and its only reader, else None."""
    if node.op.name != "gelu" or str(graph.known(node, "mode", "EXACT")) != "EXACT":
        return None
    x = tensor_input(node, "x")
    if not graph.read_once(x):
        return None
    for op in _PRODUCTS:
        product = graph.produced_by(x, op)
        if product is not None and _same_float_type(declared(product), declared(node)):
            return product
    return None


def _same_float_type(a: TensorType | None, b: TensorType | None) -> bool:
    return a is not None and b is not None and not a.is_string and a.dtype == b.dtype and a.dtype.kind == "f"
