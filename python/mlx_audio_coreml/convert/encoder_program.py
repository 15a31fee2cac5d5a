"""Build the Whisper encoder as a MIL program with coremltools' builder (no torch).

The graph is written the way Apple's ml-ane-transformers advises for the Neural Engine, whatever
the I/O layout: activations stay channels-first (B, C, 1, S) from the first conv to the last norm,
every linear layer is a 1x1 conv, layer norms run over the channel axis, and attention can be split
into one small matmul pair per head (so each head's (S, S) scores are a separate, cache-sized
tensor). Only the ends differ by layout: a unit axis is added to a 3-D mel, and a 3-D output is
transposed back to (B, S, C).

The program is built in float32; `ct.convert(compute_precision=FLOAT16)` lowers it to float16.
Nothing here has run on a Neural Engine (this project is built on Linux): the form follows Apple's
published guidance, and which ops Core ML actually places on the ANE needs `MLComputePlan` on a Mac.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
from coremltools.converters.mil.mil import Function, Program, Var, types

from ..whisper.encoder_layouts import N_FRAMES, EncoderLayout
from ._builder import mb
from .encoder_weights import BlockWeights, EncoderWeights, Linear, Norm

LAYER_NORM_EPS = 1e-5  # PyTorch's and MLX's LayerNorm default, which Whisper was trained with

# (stage fraction in [0, 1]) -> None; called once per block while the graph is built
BuildProgress = Callable[[float], None]


_MIL_DTYPES = {"float16": types.fp16, "float32": types.fp32}


@dataclass(frozen=True)
class ProgramOptions:
    io_dtype: str = "float32"  # the package's input and output dtype: "float16" or "float32"
    split_heads: bool = True  # one matmul pair per head (ANE friendly) vs one batched (B, H, ...) pair
    opset: object = None  # a coremltools target (ct.target.iOS16 ...); None: the builder's choice


def build_encoder_program(
    weights: EncoderWeights,
    layout: EncoderLayout,
    options: ProgramOptions = ProgramOptions(),
    on_block: BuildProgress | None = None,
) -> Program:
    """The encoder as a one-function MIL program whose I/O names and shapes follow `layout`."""
    io_type = _MIL_DTYPES[options.io_dtype]
    input_spec = mb.TensorSpec(shape=layout.input_shape(weights.n_mels, N_FRAMES), dtype=io_type)
    with Function({layout.input_name: input_spec}, opset_version=options.opset) as function:
        x = function.inputs[layout.input_name]
        if io_type != types.fp32:
            # the graph is written in float32; the float16 pass then drops this cast pair again
            x = mb.cast(x=x, dtype="fp32", name="mel_fp32")
        if not layout.input_has_unit_axis:
            x = mb.expand_dims(x=x, axes=[2], name="mel_4d")  # (1, n_mels, 1, frames)
        x = _front_end(x, weights)
        for index, block in enumerate(weights.blocks):
            x = _residual_block(x, block, weights.n_head, f"blocks_{index}", options.split_heads)
            if on_block is not None:
                on_block((index + 1) / weights.n_layer)
        x = _layer_norm(x, weights.ln_post, "ln_post")  # (1, D, 1, n_ctx)
        if not layout.output_channels_first:
            x = mb.squeeze(x=x, axes=[2], name="states_3d")  # (1, D, n_ctx)
            x = mb.transpose(x=x, perm=[0, 2, 1], name="states_by_position")  # (1, n_ctx, D)
        if io_type != types.fp32:
            x = mb.cast(x=x, dtype="fp16", name=layout.output_name)
        else:
            x = mb.identity(x=x, name=layout.output_name)
        function.set_outputs([x])
    program = Program()
    program.add_function("main", function)
    return program


def _front_end(x: Var, weights: EncoderWeights) -> Var:
    """Two kernel-3 convs with exact GELU (the second halves the frames), plus the positions."""
    x = _conv(x, weights.conv1, "conv1", kernel=3, stride=1)  # (1, D, 1, 3000)
    x = mb.gelu(x=x, mode="EXACT", name="conv1_gelu")
    x = _conv(x, weights.conv2, "conv2", kernel=3, stride=2)  # (1, D, 1, 1500)
    x = mb.gelu(x=x, mode="EXACT", name="conv2_gelu")
    positions = weights.positions.T[None, :, None, :]  # (1, D, 1, n_ctx)
    return mb.add(x=x, y=np.ascontiguousarray(positions, dtype=np.float32), name="with_positions")


def _residual_block(x: Var, block: BlockWeights, n_head: int, name: str, split_heads: bool) -> Var:
    attended = _attention(_layer_norm(x, block.attn_ln, f"{name}_attn_ln"), block, n_head, name, split_heads)
    x = mb.add(x=x, y=attended, name=f"{name}_attn_residual")
    hidden = _conv(_layer_norm(x, block.mlp_ln, f"{name}_mlp_ln"), block.mlp1, f"{name}_mlp1")
    hidden = mb.gelu(x=hidden, mode="EXACT", name=f"{name}_mlp_gelu")
    hidden = _conv(hidden, block.mlp2, f"{name}_mlp2")
    return mb.add(x=x, y=hidden, name=f"{name}_mlp_residual")


def _attention(x: Var, block: BlockWeights, n_head: int, name: str, split_heads: bool) -> Var:
    """Self-attention over (1, D, 1, S). Whisper scales q and k by Dh^-1/4 each; both factors are
    folded into the query projection, which saves two multiplies per block."""
    d_model = block.query.weight.shape[0]
    head_dim = d_model // n_head
    scale = float(head_dim) ** -0.5
    query = Linear(block.query.weight * scale, None if block.query.bias is None else block.query.bias * scale)
    q = _squeeze_unit(_conv(x, query, f"{name}_q"), f"{name}_q_3d")  # (1, D, S)
    k = _squeeze_unit(_conv(x, block.key, f"{name}_k"), f"{name}_k_3d")  # (1, D, S)
    v = _squeeze_unit(_conv(x, block.value, f"{name}_v"), f"{name}_v_3d")  # (1, D, S)
    if split_heads:
        mixed = _per_head_attention(q, k, v, n_head, head_dim, name)
    else:
        mixed = _batched_attention(q, k, v, n_head, head_dim, name)  # (1, D, S)
    mixed = mb.expand_dims(x=mixed, axes=[2], name=f"{name}_mixed_4d")  # (1, D, 1, S)
    return _conv(mixed, block.out, f"{name}_out")


def _per_head_attention(q: Var, k: Var, v: Var, n_head: int, head_dim: int, name: str) -> Var:
    """One (S, S) score matrix per head, as ml-ane-transformers splits it; heads rejoin on channels."""
    split = [head_dim] * n_head
    qs = mb.split(x=q, split_sizes=split, axis=1, name=f"{name}_q_heads")  # n_head x (1, Dh, S)
    ks = mb.split(x=k, split_sizes=split, axis=1, name=f"{name}_k_heads")
    vs = mb.split(x=v, split_sizes=split, axis=1, name=f"{name}_v_heads")
    heads = []
    for h in range(n_head):
        scores = mb.matmul(x=qs[h], y=ks[h], transpose_x=True, name=f"{name}_h{h}_scores")  # (1, Sq, Sk)
        weights = mb.softmax(x=scores, axis=-1, name=f"{name}_h{h}_softmax")
        heads.append(mb.matmul(x=vs[h], y=weights, transpose_y=True, name=f"{name}_h{h}_mix"))  # (1, Dh, Sq)
    return mb.concat(values=heads, axis=1, name=f"{name}_heads_joined")  # (1, D, S)


def _batched_attention(q: Var, k: Var, v: Var, n_head: int, head_dim: int, name: str) -> Var:
    """All heads in one (1, H, S, S) score tensor."""
    seq = cast("Sequence[int]", q.shape)[2]  # coremltools annotates Var.shape as a 1-tuple, Tuple[int]
    by_head = [1, n_head, head_dim, seq]
    q = mb.reshape(x=q, shape=by_head, name=f"{name}_q_by_head")  # (1, H, Dh, S)
    k = mb.reshape(x=k, shape=by_head, name=f"{name}_k_by_head")
    v = mb.reshape(x=v, shape=by_head, name=f"{name}_v_by_head")
    scores = mb.matmul(x=q, y=k, transpose_x=True, name=f"{name}_scores")  # (1, H, Sq, Sk)
    weights = mb.softmax(x=scores, axis=-1, name=f"{name}_softmax")
    mixed = mb.matmul(x=v, y=weights, transpose_y=True, name=f"{name}_mix")  # (1, H, Dh, Sq)
    return mb.reshape(x=mixed, shape=[1, n_head * head_dim, seq], name=f"{name}_heads_joined")  # (1, D, S)


def _conv(x: Var, layer: Linear, name: str, kernel: int = 1, stride: int = 1) -> Var:
    """A conv over the last axis of (1, C, 1, S); kernel 1 is a linear layer in ANE form."""
    weight = layer.weight
    if weight.ndim == 2:
        weight = weight[:, :, None]  # (out, in, 1)
    weight = np.ascontiguousarray(weight[:, :, None, :], dtype=np.float32)  # (out, in, 1, kernel)
    pad = kernel // 2
    bias = None if layer.bias is None else np.ascontiguousarray(layer.bias, dtype=np.float32)
    return mb.conv(
        x=x, weight=weight, bias=bias, strides=[1, stride], pad_type="custom", pad=[0, 0, pad, pad], name=name
    )


def _layer_norm(x: Var, norm: Norm, name: str) -> Var:
    """LayerNorm over the channel axis of (1, C, 1, S)."""
    gamma = np.ascontiguousarray(norm.weight, dtype=np.float32)
    beta = np.ascontiguousarray(norm.bias, dtype=np.float32)
    return mb.layer_norm(x=x, axes=[1], gamma=gamma, beta=beta, epsilon=LAYER_NORM_EPS, name=name)


def _squeeze_unit(x: Var, name: str) -> Var:
    return mb.squeeze(x=x, axes=[2], name=name)  # (1, C, 1, S) -> (1, C, S)
