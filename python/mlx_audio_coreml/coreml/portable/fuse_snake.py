"""Load-time fusion: the Snake activation spelled as MIL ops, x + sin(x * alpha)^2 * inv_alpha with
constant alpha and inv_alpha (either operand order of each mul and of the add), becomes one node
(ops/snake.py), when the intermediate values have no other reader. The fused op computes the same
expression; on the CPU in float32 it runs in numpy, a block of rows at a time.
"""

from __future__ import annotations

from .graph import Binding, Block, Constants, Node
from .ops.fused import internal_op
from .ops.snake import snake
from .rewrite import GraphIndex, derived_node

SNAKE = internal_op("portable.snake", snake)


def fuse_snake(block: Block, constants: Constants) -> int:
    """Replace each Snake pattern of `block` by one fused node; returns how many."""
    graph = GraphIndex(block, constants)
    replaced: dict[int, Node] = {}
    consumed: set[int] = set()
    for node in block.nodes:
        found = _match(node, graph)
        if found is None:
            continue
        x, alpha, inv_alpha, inner = found
        params = {"x": x, "alpha": alpha, "inv_alpha": inv_alpha}
        replaced[id(node)] = derived_node(node, SNAKE, params, {})
        consumed.update(id(n) for n in inner)
    block.nodes = [replaced.get(id(n), n) for n in block.nodes if id(n) not in consumed]
    return len(replaced)


def _operands(node: Node) -> tuple[list[Binding], list[Binding]] | None:
    x, y = node.params.get("x"), node.params.get("y")
    return (x, y) if x and y and len(x) == 1 and len(y) == 1 else None


def _split_constant(node: Node, graph: GraphIndex) -> tuple[list[Binding], list[Binding]] | None:
    """(the computed operand, the constant one) of a binary node, or None."""
    pair = _operands(node)
    if pair is None:
        return None
    a, b = pair
    a_const = a[0].name is None or a[0].name in graph.constants
    b_const = b[0].name is None or b[0].name in graph.constants
    if a_const == b_const:
        return None
    return (b, a) if a_const else (a, b)


def _single(name: str | None, op: str, graph: GraphIndex, readers: int = 1) -> Node | None:
    node = graph.produced_by(name, op)
    return node if node is not None and name is not None and graph.readers[name] == readers else None


def _match(node: Node, graph: GraphIndex) -> tuple[list[Binding], list[Binding], list[Binding], list[Node]] | None:
    """For add(x, mul(mul(s, s), inv_alpha)) with s = sin(mul(x, alpha)): (x, alpha, inv_alpha, the
    four inner nodes); else None."""
    if node.op.name != "add" or (pair := _operands(node)) is None:
        return None
    for x, scaled in (pair, pair[::-1]):
        outer = _single(scaled[0].name, "mul", graph)
        split = _split_constant(outer, graph) if outer is not None else None
        if outer is None or split is None:
            continue
        squared, inv_alpha = split
        square = _single(squared[0].name, "mul", graph)
        sides = _operands(square) if square is not None else None
        if square is None or sides is None or sides[0][0].name != sides[1][0].name:
            continue
        sine = _single(sides[0][0].name, "sin", graph, readers=2)
        product = _single(sine.params["x"][0].name, "mul", graph) if sine is not None else None
        parts = _split_constant(product, graph) if product is not None else None
        if sine is None or product is None or parts is None or parts[0][0].name != x[0].name:
            continue
        return x, parts[1], inv_alpha, [product, sine, square, outer]
    return None
