"""Execute an ML Program's `main` with MLX: fold constants at load, then run node by node.

Load: read the graph (unsupported ops fail here), resolve host parameters that are constants,
and evaluate every node whose inputs are all constants (constexpr decompression, weight
transposes, shape arithmetic), so each prediction runs only what depends on the inputs.
Run: `Program.run` walks the nodes eagerly; `Executor` wraps it in `mx.compile` and falls back to
eager execution for programs whose control flow or shapes depend on computed values.
States (iOS18): each state input is fed as an array, wrapped in a `StateCell` that read_state /
write_state use in program order, and its final value is returned after the outputs, so a whole
prediction stays a pure function of arrays (and compiles like any other).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import mlx.core as mx
import numpy as np

from ...errors import PackageError, PredictionFailed
from .channels_last import apply_channels_last
from .fuse import fuse_attention
from .fuse_gelu import fuse_product_gelu
from .fuse_norm import fuse_masked_norm
from .fuse_residual import fuse_conv_residual
from .fuse_snake import fuse_snake
from .fuse_style import fuse_style_products
from .graph import Block, Constants, GraphReader, Node
from .ops import NeedsHostValue, host, to_host
from .ops.state import StateCell
from .package import PackageContents
from .values import TensorType, mx_dtype_or_none


class Program:
    """The loaded `main` function: inputs, constants, nodes still to run, outputs. With `optimize`,
    the load-time rewrites of fuse.py, channels_last.py, fuse_gelu.py, fuse_snake.py and fuse_norm.py run after constant folding;
    `rewrites` counts what each changed."""

    def __init__(self, contents: PackageContents, optimize: bool = True) -> None:
        self.path = contents.path
        reader = GraphReader(contents.path, contents.program, contents.weights_dir)
        self.opset = reader.opset_name
        inputs, self.block = reader.main()
        self.input_names = tuple(name for name, _ in inputs)
        self.input_types: dict[str, TensorType | None] = dict(inputs)
        self.state_names = tuple(name for name in self.input_names if name in reader.state_inputs)
        self.state_types: dict[str, TensorType | None] = dict(reader.state_inputs)
        self.output_names = self.block.outputs
        self.constants: Constants = reader.constants
        self._fold_constants()
        self.rewrites: dict[str, int] = {}
        if optimize:
            self.rewrites["attention"] = fuse_attention(self.block, self.constants)
            self.rewrites["channels_last"] = apply_channels_last(self.block, self.constants)
            self.rewrites["product_gelu"] = fuse_product_gelu(self.block, self.constants)
            self.rewrites["snake"] = fuse_snake(self.block, self.constants)
            self.rewrites["masked_norm"] = fuse_masked_norm(self.block, self.constants)  # after snake: absorbs it
            self.rewrites["conv_residual"] = fuse_conv_residual(self.block, self.constants)
            self.rewrites["style_products"] = fuse_style_products(self.block, self.constants)

    # --- load-time work ---------------------------------------------------------------------------

    def _fold_constants(self) -> None:
        remaining: list[Node] = []
        for node in self.block.nodes:
            self._resolve_constant_params(node)
            if node.op.foldable and not node.ctx.blocks and self._all_constant(node):
                self._fold(node)
            else:
                remaining.append(node)
        self.block.nodes = remaining

    def _all_constant(self, node: Node) -> bool:
        return all(name in self.constants for name in node.references)

    def _resolve_constant_params(self, node: Node) -> None:
        constant = {
            name
            for name, bindings in node.params.items()
            if all(b.name is None or b.name in self.constants for b in bindings)
        }
        node.ctx.constant_params = frozenset(constant)
        for name in node.op.static & constant:
            values = [self.constants.host(b.name) if b.name is not None else b.host for b in node.params[name]]
            node.host_params[name] = values if name in node.op.variadic else values[0]

    def _fold(self, node: Node) -> None:
        try:
            outputs = run_node(node, self.constants.device)
            mx.eval([o for o in outputs if isinstance(o, mx.array)])
        except Exception as exc:
            raise PackageError(
                str(self.path), f"op '{node.name}' ({node.op.name}) failed on its constant inputs: {exc}"
            ) from exc
        for name, value in zip(node.outputs, outputs):
            self.constants.add(name, value)

    def release(self) -> None:
        """Drop the constants and the nodes (with their prepared weights): a closed model's share of
        the weights shared with other loaded programs (shared.py) is freed once they close too."""
        self.constants = Constants()
        self.block = Block(self.block.inputs, [], self.block.outputs)

    # --- prediction -------------------------------------------------------------------------------

    def run(self, feeds: Mapping[str, mx.array]) -> list[mx.array]:
        """The outputs in `output_names` order, then the final value of each state in `state_names`."""
        env: dict[str, Any] = dict(self.constants.device)
        env.update(feeds)
        cells = {name: StateCell(feeds[name]) for name in self.state_names}
        env.update(cells)
        outputs = run_block(self.block, env)
        return outputs + [cells[name].value for name in self.state_names]


def run_block(block: Block, env: dict[str, Any], inputs: Sequence[Any] = ()) -> list[Any]:
    """Run `block` in `env` (which it extends); its inputs are bound to `inputs` first. A value is
    dropped from `env` once no later node reads it, so that in an eager run MLX can reuse its
    memory (keeping all of tiny.en's encoder intermediates alive churned ~170 MB of fresh pages
    per prediction past MLX's buffer cache: 42,000 page faults, ~30% of its time on the CPU here)."""
    for name, value in zip(block.inputs, inputs):
        env[name] = value
    for node, dead in zip(block.nodes, _release_plan(block)):
        outputs = run_node(node, env)
        for name, value in zip(node.outputs, outputs):
            env[name] = value
        for name in dead:
            env.pop(name, None)
    return [env[name] for name in block.outputs]


def _release_plan(block: Block) -> list[tuple[str, ...]]:
    """For each node of `block`, the names it reads or writes that no later node (nor the block's
    outputs) reads; made once per block."""
    if block.release_plan is None:
        last_use: dict[str, int] = {}
        for index, node in enumerate(block.nodes):
            for name in [*node.references, *node.outputs]:
                last_use[name] = index
        kept = set(block.outputs)
        plan: list[list[str]] = [[] for _ in block.nodes]
        for name, index in last_use.items():
            if name not in kept:
                plan[index].append(name)
        block.release_plan = [tuple(names) for names in plan]
    return block.release_plan


def run_node(node: Node, env: Mapping[str, Any]) -> list[Any]:
    kwargs: dict[str, Any] = dict(node.host_params)
    for name, bindings in node.params.items():
        if name in kwargs:
            continue
        values = [env[b.name] if b.name is not None else b.literal for b in bindings]
        if name in node.op.static:
            values = [to_host(v) for v in values]
        kwargs[name] = values if name in node.op.variadic else values[0]
    if node.ctx.blocks:
        node.ctx.run_block = lambda block, inputs=(): run_block(block, dict(env), inputs)
    result = node.op.fn(node.ctx, **kwargs)
    if not node.outputs:  # an op run for its effect (write_state)
        return []
    outputs = list(result) if isinstance(result, (tuple, list)) and len(node.outputs) > 1 else [result]
    if len(outputs) != len(node.outputs):
        raise PredictionFailed(
            f"op '{node.name}' gave {len(outputs)} outputs, the program declares {len(node.outputs)}"
        )
    return [_as_declared(value, node.ctx.output_types[i]) for i, value in enumerate(outputs)]


def _as_declared(value: Any, declared: TensorType | None) -> Any:
    """Cast to the dtype the program declares, so MLX's promotion rules never leak into results."""
    if declared is None or declared.is_string or not isinstance(value, mx.array):
        return value
    wanted = mx_dtype_or_none(declared.dtype)
    if wanted is not None and value.dtype != wanted:
        return value.astype(wanted)
    return value


def _draws_random(block: Block) -> bool:
    return any(
        node.op.name.startswith("random_") or any(_draws_random(inner) for inner in node.ctx.blocks)
        for node in block.nodes
    )


def _restore_generator(key: np.ndarray | None) -> None:
    """Put back MLX's generator key as it was before an abandoned trace (which leaves a placeholder)."""
    if key is not None:
        mx.random.seed((int(key[0]) << 32) | int(key[1]))  # seed(s) sets the key to (s >> 32, s & 0xffffffff)


class Executor:
    """Runs a Program compiled with `mx.compile` where possible, else eagerly."""

    def __init__(self, program: Program, compile: bool = True) -> None:
        self.program = program
        self.compiled = compile
        # unseeded random ops draw from MLX's global generator: its state must be an input and an
        # output of the compiled function, or every prediction would repeat the traced draw
        self._random = _draws_random(program.block)
        self._compiled_fn = None
        if compile and self._random:
            self._compiled_fn = mx.compile(self._run_positional, inputs=mx.random.state, outputs=mx.random.state)
        elif compile:
            self._compiled_fn = mx.compile(self._run_positional)

    def _run_positional(self, *inputs: mx.array) -> list[mx.array]:
        return self.program.run(dict(zip(self.program.input_names, inputs)))

    def __call__(self, feeds: Mapping[str, mx.array]) -> list[mx.array]:
        if self._compiled_fn is not None:
            # MLX's stubs type the generator state as object; it is a list holding the key array
            key = np.array(cast("list[mx.array]", mx.random.state)[0]) if self._random else None
            try:
                with host.tracing():  # ops with a host path keep to plain MLX inside the trace
                    return self._compiled_fn(*(feeds[name] for name in self.program.input_names))
            except NeedsHostValue:
                # shapes or control flow depend on computed values: trace no more, run eagerly
                _restore_generator(key)
                self._compiled_fn = None
                self.compiled = False
            except BaseException:
                _restore_generator(key)
                raise
        return self.program.run(feeds)
