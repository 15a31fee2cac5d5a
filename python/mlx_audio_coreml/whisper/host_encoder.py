"""CPU fast path for the encoder's transformer blocks: numpy rows, oneDNN matrix products.

Why: with MLX on the CPU every product goes to the preloaded OpenBLAS, whose kernels for the
skinny shapes of per-head attention ((500 x 64) @ (64 x 1500), (500 x 1500) @ (1500 x 64)) run at
half the speed of oneDNN's here, and each MLX product of a strided head slice copies it first.
Here the residual stream stays one numpy (T, D) block; q, k and v come from one fused (T, 3 D)
product; attention is `host_attention.attend` (per-head blocks, oneDNN products); softmax and
GELU are the vectorized ones of `host_math`. With `int8`, the four linear layers of each
block use the int8 products of `host_linear`, and attention's two products take bfloat16 inputs
where the CPU multiplies bfloat16 (cpu/bf16.py; CTranslate2 keeps them float32; softmax stays float32).

Used when `applies`: MLX on the CPU in float32, oneDNN installed, plain `nn.Linear` layers. The
convolutional stem stays in MLX (BLAS-bound already). Inputs and outputs are MLX arrays.
"""

from __future__ import annotations

import itertools
from typing import Any

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from ..cpu import attention as host_attention
from ..cpu import host_math, onednn
from ..cpu import linear as host_linear
from ..cpu import pool as host_pool


def applies(encoder: Any) -> bool:
    """True when the encoder's blocks can run here (see the module docstring)."""
    block = encoder.blocks[0]
    return (
        onednn.available()
        and host_math.available(encoder.conv1.weight.dtype)
        and type(block.mlp1) is nn.Linear
        and type(block.attn.query) is nn.Linear
    )


class _BlockWeights:
    """One encoder block prepared: q/k/v fused (q pre-scaled by 1/sqrt(Dh)), norms as numpy."""

    def __init__(self, block: Any, int8: bool) -> None:
        attn = block.attn
        self.sources = [attn.query.weight, attn.key.weight, attn.value.weight, block.mlp1.weight]
        self.int8 = int8
        self.heads = attn.n_head
        q_scale = (attn.query.weight.shape[0] // self.heads) ** -0.5
        self.qkv = host_linear.fused([attn.query, attn.key, attn.value], int8, scales=[q_scale, 1.0, 1.0])
        self.out, self.mlp1, self.mlp2 = (
            host_linear.from_layer(layer, int8) for layer in (attn.out, block.mlp1, block.mlp2)
        )
        self.norms = [host_math.norm_params(block.attn_ln), host_math.norm_params(block.mlp_ln)]

    def current(self, block: Any, int8: bool) -> bool:
        now = [block.attn.query.weight, block.attn.key.weight, block.attn.value.weight, block.mlp1.weight]
        return int8 == self.int8 and all(a is b for a, b in zip(self.sources, now))


def _weights(encoder: Any, int8: bool) -> list[_BlockWeights]:
    prepared = getattr(encoder, "_host_blocks", None)
    if prepared is None or not all(p.current(b, int8) for p, b in zip(prepared, encoder.blocks)):
        mx.eval(encoder.parameters())
        prepared = [_BlockWeights(block, int8) for block in encoder.blocks]
        object.__setattr__(encoder, "_host_blocks", prepared)  # not a parameter: kept off the module tree
    return prepared


def _row_pieces(length: int) -> list[slice]:
    """The row ranges a block's products run in (a few per worker): `prepare` makes their kernels."""
    return host_pool.row_blocks(length, host_math.ROWS_PER_BLOCK)


def _block(w: _BlockWeights, x: np.ndarray) -> None:
    """One residual block on the (T, D) stream `x`, in place; heads and row ranges go to the workers."""
    length, width = x.shape
    blocks = _row_pieces(length)
    qkv = np.empty((length, 3 * width), np.float32)  # q | k | v
    host_pool.run_all(lambda rows: w.qkv(host_math.layer_norm(x[rows], w.norms[0]), out=qkv[rows]), blocks)
    merged = np.empty((length, width), np.float32)  # heads side by side
    q, k, v = (host_attention.split_heads(qkv[:, i * width : (i + 1) * width], w.heads) for i in range(3))
    # (H, T, Dh) views; q pre-scaled. int8: the products in bfloat16 where the CPU has them (cpu/bf16.py)
    host_attention.attend(q, k, v, host_attention.split_heads(merged, w.heads), bf16_products=w.int8)

    def finish(rows: slice) -> None:  # output projection and MLP: each row on its own from here
        x[rows] += w.out(merged[rows])
        hidden = w.mlp1(host_math.layer_norm(x[rows], w.norms[1]))  # (rows, 4 D) stays in cache
        x[rows] += w.mlp2(host_math.gelu_np_(hidden))

    host_pool.run_all(finish, blocks)


def encode_blocks(encoder: Any, x: mx.array, int8: bool = False) -> mx.array:
    """The encoder's blocks and final norm on (B, T, D) features (stem and positions added)."""
    layers = _weights(encoder, int8)
    ln_post = host_math.norm_params(encoder.ln_post)
    mx.eval(x)
    results = []
    for item in np.asarray(x):
        stream = np.array(item, np.float32)  # (T, D), our own writable copy
        for w in layers:
            _block(w, stream)
        results.append(host_math.layer_norm(stream, ln_post))
    return mx.array(np.stack(results))  # (B, T, D)


def prepare(encoder: Any) -> None:
    """Build the host weights now (int8 quantization takes a moment), and with int8 the products
    for the row counts of a window's pieces, instead of on the first window."""
    layers = _weights(encoder, int8=encoder.host_int8)
    length = encoder._positional_embedding.shape[0]  # a window's positions (1500 for Whisper)
    counts = {piece.stop - piece.start for piece in _row_pieces(length)}
    for w in layers:
        for layer, count in itertools.product((w.qkv, w.out, w.mlp1, w.mlp2), counts):
            layer.prepare_rows(count)
