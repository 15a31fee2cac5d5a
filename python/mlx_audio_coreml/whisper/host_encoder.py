"""CPU fast path for the encoder's transformer blocks: numpy rows, oneDNN matrix products.

Why: with MLX on the CPU every product goes to the preloaded OpenBLAS, whose kernels for the
skinny shapes of per-head attention ((500 x 64) @ (64 x 1500), (500 x 1500) @ (1500 x 64)) run at
half the speed of oneDNN's here, and each MLX product of a strided head slice copies it first.
Here the residual stream stays one numpy (T, D) block; q, k and v come from one fused (T, 3 D)
product, each head's columns copied into a plain block for oneDNN; softmax and
GELU are the vectorized numpy ones of `host_math`. With `int8`, the four linear layers of each
block use the int8 products of `host_linear` (attention itself stays float32, as in CTranslate2).

Used when `applies`: MLX on the CPU in float32, oneDNN installed, plain `nn.Linear` layers. The
convolutional stem stays in MLX (BLAS-bound already). Inputs and outputs are MLX arrays.
"""

from __future__ import annotations

from typing import Any

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from .. import onednn
from . import host_math, host_pool
from .host_linear import HostLinear

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
        width = attn.query.weight.shape[0]
        self.heads = attn.n_head
        scale = np.float32((width // self.heads) ** -0.5)  # scaling q's weights: no pass over scores
        weight = np.concatenate([np.asarray(attn.query.weight) * scale, np.asarray(attn.key.weight), np.asarray(attn.value.weight)])
        bias = np.concatenate([np.asarray(attn.query.bias) * scale, np.zeros(width, np.float32), np.asarray(attn.value.bias)])
        self.qkv = HostLinear(weight, bias, int8=int8)
        self.out = _linear(attn.out, int8)
        self.mlp1, self.mlp2 = _linear(block.mlp1, int8), _linear(block.mlp2, int8)
        self.norms = [_norm(block.attn_ln), _norm(block.mlp_ln)]

    def current(self, block: Any, int8: bool) -> bool:
        now = [block.attn.query.weight, block.attn.key.weight, block.attn.value.weight, block.mlp1.weight]
        return int8 == self.int8 and all(a is b for a, b in zip(self.sources, now))


def _linear(layer: Any, int8: bool) -> HostLinear:
    return HostLinear(np.asarray(layer.weight), np.asarray(layer.bias), int8=int8)


def _norm(layer: Any) -> tuple[np.ndarray, np.ndarray, float]:
    return np.asarray(layer.weight), np.asarray(layer.bias), float(layer.eps)


def _weights(encoder: Any, int8: bool) -> list[_BlockWeights]:
    prepared = getattr(encoder, "_host_blocks", None)
    if prepared is None or not all(p.current(b, int8) for p, b in zip(prepared, encoder.blocks)):
        mx.eval(encoder.parameters())
        prepared = [_BlockWeights(block, int8) for block in encoder.blocks]
        object.__setattr__(encoder, "_host_blocks", prepared)  # not a parameter: kept off the module tree
    return prepared


def layer_norm(x: np.ndarray, norm: tuple[np.ndarray, np.ndarray, float]) -> np.ndarray:
    """Layer norm of each row of a (T, D) float32 block, into a new array."""
    weight, bias, eps = norm
    centered = x - x.mean(axis=1, keepdims=True)
    variance = np.einsum("td,td->t", centered, centered)[:, None] / np.float32(x.shape[1])
    centered *= np.reciprocal(np.sqrt(variance + np.float32(eps)))
    centered *= weight
    centered += bias
    return centered


def _row_blocks(length: int) -> list[slice]:
    """Row ranges: a few per worker (even shares), none over ROWS_PER_BLOCK (cache-sized blocks)."""
    workers = host_pool.worker_count()
    count = workers * max(1, -(-length // (host_math.ROWS_PER_BLOCK * workers)))
    size = -(-length // count)
    return [slice(start, min(start + size, length)) for start in range(0, length, size)]


def _attend_head(w: _BlockWeights, qkv: np.ndarray, head: int, merged: np.ndarray) -> None:
    """One head of self-attention, written into its Dh columns of `merged` (T, D)."""
    length, width = merged.shape
    head_dim = width // w.heads
    cols = slice(head * head_dim, (head + 1) * head_dim)
    # Each head's q, k, v as plain blocks: oneDNN's kernels for inputs with a long row stride
    # took ~8 ms per product here against ~0.5 ms for a copy, so copying (~0.1 ms) wins.
    q_all = np.ascontiguousarray(qkv[:, cols])  # (T, Dh)
    k = np.ascontiguousarray(qkv[:, width + cols.start : width + cols.stop])
    v = np.ascontiguousarray(qkv[:, 2 * width + cols.start : 2 * width + cols.stop])
    rows = host_math.ROWS_PER_BLOCK  # queries per block: (rows, T) scores stay in cache
    scores = np.empty((min(rows, length), length), np.float32)
    for start in range(0, length, rows):
        q = q_all[start : start + rows]  # (rows, Dh)
        block = scores[: q.shape[0]]
        onednn.sgemm(q, k, block, b_transposed=True)  # (rows, T)
        host_math.softmax_np_(block)
        onednn.sgemm(block, v, merged[start : start + rows, cols])  # (rows, Dh) into its head's columns


def _block(w: _BlockWeights, x: np.ndarray) -> None:
    """One residual block on the (T, D) stream `x`, in place; heads and row ranges go to the workers."""
    length, width = x.shape
    blocks = _row_blocks(length)
    qkv = np.empty((length, 3 * width), np.float32)  # q | k | v
    host_pool.run_all(lambda rows: w.qkv(layer_norm(x[rows], w.norms[0]), out=qkv[rows]), blocks)
    merged = np.empty((length, width), np.float32)  # heads side by side
    host_pool.run_all(lambda head: _attend_head(w, qkv, head, merged), range(w.heads))

    def finish(rows: slice) -> None:  # output projection and MLP: each row on its own from here
        x[rows] += w.out(merged[rows])
        hidden = w.mlp1(layer_norm(x[rows], w.norms[1]))  # (rows, 4 D) stays in cache
        x[rows] += w.mlp2(host_math.gelu_np_(hidden))

    host_pool.run_all(finish, blocks)


def encode_blocks(encoder: Any, x: mx.array, int8: bool = False) -> mx.array:
    """The encoder's blocks and final norm on (B, T, D) features (stem and positions added)."""
    layers = _weights(encoder, int8)
    ln_post = _norm(encoder.ln_post)
    mx.eval(x)
    results = []
    for item in np.asarray(x):
        stream = np.array(item, np.float32)  # (T, D), our own writable copy
        for w in layers:
            _block(w, stream)
        results.append(layer_norm(stream, ln_post))
    return mx.array(np.stack(results))  # (B, T, D)


def prepare(encoder: Any) -> None:
    """Build the host weights now (int8 quantization takes a moment) instead of on the first window."""
    _weights(encoder, int8=getattr(encoder, "host_int8", False))
