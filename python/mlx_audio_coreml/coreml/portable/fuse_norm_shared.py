"""Load-time step before fuse_norm.py: a masked instance norm whose normalized value feeds several
affines gets one copy of its statistics per affine, so that each affine (with its activation and gate)
fuses into one masked-norm node.

Why: a converter that merges equal subexpressions leaves one norm for every block that normalizes the
same input (Kokoro's generator: a stage's three residual blocks open with an AdaIN of the same value,
each with its own style affine and Snake). fuse_norm.py fuses a norm with one reader only, so those
three affines stayed as separate MLX ops, about eight passes over the activation each. Recomputing the
statistics costs two passes over the activation per extra reader inside the fused op; the copies
compute exactly what the shared norm computed. Measured (one core, real weights, same process, 6 rounds
each): bucket 148 2.068 vs 2.090 s a call, bucket 256 2.348 vs 2.391 s (the fused op also skips the
padded rows the separate ops computed).
"""

from __future__ import annotations

from collections.abc import Callable

from .graph import Binding, Block, Constants, Node
from .rewrite import GraphIndex, derived_node, tensor_input

# fuse_norm's matcher: the nodes computing d = x - mean and r = rsqrt(var) for (d, r), or None
StatsMatcher = Callable[[str, str, GraphIndex], "tuple[Node, ...] | None"]
MAX_READERS = 4  # more affines of one norm stay as they are (a copy per reader would not pay)


def unshare_norms(block: Block, constants: Constants, stats: StatsMatcher) -> int:
    """Give each extra affine reader of a shared normalized value its own copy of the statistics;
    returns how many copies were made."""
    graph = GraphIndex(block, constants)
    copies: dict[int, list[Node]] = {}  # id(normed node) -> nodes to insert after it
    rebound: dict[int, Node] = {}  # id(reader) -> the reader reading its copy
    made = 0
    for node in block.nodes:
        readers = _affine_readers(node, graph)
        chain = _shared_chain(node, graph, stats) if readers else None
        if not readers or chain is None:
            continue
        inserted: list[Node] = []
        for index, reader in enumerate(readers[1:], start=1):
            cloned, renamed = _cloned(chain + [node], index, graph)
            inserted.extend(cloned)
            rebound[id(reader)] = _rebound(reader, renamed)
            made += 1
        copies[id(node)] = inserted
    nodes: list[Node] = []
    for node in block.nodes:
        nodes.append(rebound.get(id(node), node))
        nodes.extend(copies.get(id(node), []))
    block.nodes = nodes
    return made


def _affine_readers(node: Node, graph: GraphIndex) -> list[Node]:
    """The readers of a mul's output when it has 2..MAX_READERS and every one is a mul (a scale)."""
    if node.op.name != "mul" or len(node.outputs) != 1:
        return []
    name = node.outputs[0]
    count = graph.readers[name]
    if count < 2 or count > MAX_READERS or name in graph.block.outputs:
        return []
    readers = [n for n in graph.block.nodes if name in n.references]
    if len(readers) != count or any(r.op.name != "mul" or r.references.count(name) != 1 for r in readers):
        return []
    return readers if all(_read_by_one_add(r, graph) for r in readers) else []


def _read_by_one_add(node: Node, graph: GraphIndex) -> bool:
    """The scale's output goes on to one add (the shift), as fuse_norm's affine pattern needs: else a
    copy of the statistics would be work with nothing fused to pay for it."""
    name = node.outputs[0] if len(node.outputs) == 1 else None
    if name is None or graph.readers[name] != 1 or name in graph.block.outputs:
        return False
    return any(n.op.name == "add" and name in n.references for n in graph.block.nodes)


def _shared_chain(node: Node, graph: GraphIndex, stats: StatsMatcher) -> list[Node] | None:
    """The statistics nodes of a normalized value d * rsqrt(var), in program order, or None."""
    a, b = tensor_input(node, "x"), tensor_input(node, "y")
    if a is None or b is None:
        return None
    for d_name, r_name in ((a, b), (b, a)):
        found = stats(d_name, r_name, graph)
        if found is not None:
            order = {id(n): i for i, n in enumerate(graph.block.nodes)}
            return sorted(found, key=lambda n: order[id(n)])
    return None


def _cloned(chain: list[Node], index: int, graph: GraphIndex) -> tuple[list[Node], dict[str, str]]:
    """Copies of `chain` whose outputs have fresh names; (copies, old name -> new name)."""
    renamed: dict[str, str] = {}
    copies: list[Node] = []
    for node in chain:
        outputs = []
        for name in node.outputs:
            fresh, suffix = f"{name}.unshared{index}", 0
            while fresh in graph.producer or fresh in renamed.values():
                suffix += 1
                fresh = f"{name}.unshared{index}_{suffix}"
            renamed[name] = fresh
            outputs.append(fresh)
        copies.append(
            derived_node(node, node.op, _renamed_params(node, renamed), dict(node.host_params), tuple(outputs))
        )
    return copies, renamed


def _rebound(node: Node, renamed: dict[str, str]) -> Node:
    return derived_node(node, node.op, _renamed_params(node, renamed), dict(node.host_params))


def _renamed_params(node: Node, renamed: dict[str, str]) -> dict[str, list[Binding]]:
    return {
        key: [Binding(renamed.get(b.name, b.name), b.literal, b.host) if b.name else b for b in bindings]
        for key, bindings in node.params.items()
    }
