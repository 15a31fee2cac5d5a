"""Unmasked multi-head attention on the CPU host path: numpy blocks, oneDNN products, heads spread
over the host workers.

Shared by the product's encoder (host_encoder.py) and the portable runtime's attention ops
(coreml/portable/ops/host.py), so both run the same kernels on the same layout.
How: each head's q, k and v are copied into plain (rows, Dh) blocks first: oneDNN's kernels for
inputs with a long row stride (a head's columns of a (T, 3 D) projection) took ~8 ms per product
here against ~0.5 ms for a plain block, and the copy costs ~0.1 ms. Queries go `ROWS_PER_BLOCK`
at a time, so a block's (rows, S) scores stay in cache from QK^T through softmax to AV. Each
worker of `host_pool` takes whole heads, with single-threaded kernels.
Needs oneDNN (`onednn.available()`); callers keep another route without it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from . import bf16, host_math, native_kernels, onednn, scratch
from . import pool as host_pool


def split_heads(block: np.ndarray, heads: int) -> np.ndarray:
    """A (T, H * Dh) block seen as (H, T, Dh): a view, head h being columns h Dh .. (h + 1) Dh."""
    length, width = block.shape
    return block.reshape(length, heads, width // heads).transpose(1, 0, 2)  # (H, T, Dh)


def attend(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    out: np.ndarray,
    scale: float = 1.0,
    *,
    bf16_products: bool = False,
    keys_transposed: bool = False,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """out[h] = softmax(scale q[h] k[h]^T (+ mask)) v[h] for every head h; returns `out`.

    q (H, T, Dh), k (H, S, Dh) or, `keys_transposed`, (H, Dh, S), v (H, S, Dv), out (H, T, Dv), all
    float32; any of them may be a strided view (such as `split_heads` of a wider block). `mask`
    (T, S) is added to every head's scores (a causal -inf). Heads go to the host workers.
    `bf16_products`: the two products take bfloat16 copies of their inputs where the CPU multiplies
    bfloat16 (cpu/bf16.py: an int8 encoder's attention); scores, softmax and out stay float32.
    """
    heads, length, head_dim = q.shape
    keys_dim, positions = (k.shape[1], k.shape[2]) if keys_transposed else (k.shape[2], k.shape[1])
    if (
        k.shape[:1] != (heads,)
        or keys_dim != head_dim
        or v.shape[:2] != (heads, positions)
        or out.shape != (heads, length, v.shape[2])
        or (mask is not None and mask.shape != (length, positions))
    ):
        raise ValueError(f"attention shapes do not chain: q {q.shape}, k {k.shape}, v {v.shape}, out {out.shape}")
    products = _BF16 if bf16_products and bf16.available() else _FLOAT32
    host_pool.run_all(
        lambda h: _attend_head(q[h], k[h], v[h], out[h], scale, products, keys_transposed, mask), range(heads)
    )
    return out


def _plain(block: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """A C-contiguous float32 copy of a 2-D block (times `scale`); the block itself when already so."""
    if scale == 1.0:
        return np.ascontiguousarray(block, np.float32)
    return np.multiply(
        block, np.float32(scale), out=np.empty(block.shape, np.float32)
    )  # never in place: q may be shared


def _bf16_copy(block: np.ndarray, role: str, scale: float = 1.0) -> np.ndarray:
    """bfloat16 bits of a 2-D float32 block (times `scale`), in this thread's scratch for `role`."""
    rows = block if block.strides[-1] == block.itemsize and scale == 1.0 else _plain(block, scale)
    return native_kernels.to_bf16(rows, scratch.block_scratch.get(role, block.shape, np.uint16))


class _Products(NamedTuple):
    """One precision's operands and products for `_attend_head`."""

    operands: Callable[[np.ndarray, np.ndarray, np.ndarray, float], tuple[np.ndarray, ...]]  # q, k, v, scale
    weights: Callable[[np.ndarray], np.ndarray]  # the softmax's (rows, S) block as the second product takes it
    multiply: Callable[..., np.ndarray]  # (a, b, out, b_transposed=) -> out, float32


_FLOAT32 = _Products(lambda q, k, v, scale: (_plain(q, scale), _plain(k), _plain(v)), lambda block: block, onednn.sgemm)


def _bf16_operands(q: np.ndarray, k: np.ndarray, v: np.ndarray, scale: float) -> tuple[np.ndarray, ...]:
    """v as bfloat16; q and k too where QK^T pays in bfloat16 (bf16.scores_in_bf16), else float32."""
    if bf16.scores_in_bf16():
        return _bf16_copy(q, "bf16 q", scale), _bf16_copy(k, "bf16 k"), _bf16_copy(v, "bf16 v")
    return _plain(q, scale), _plain(k), _bf16_copy(v, "bf16 v")


def _multiply_either(a: np.ndarray, b: np.ndarray, out: np.ndarray, *, b_transposed: bool = False) -> np.ndarray:
    """bfloat16 operands (uint16 bits) through bf16.gemm, float32 ones through oneDNN's sgemm."""
    product = bf16.gemm if a.dtype == np.uint16 else onednn.sgemm
    return product(a, b, out, b_transposed=b_transposed)


_BF16 = _Products(
    _bf16_operands,
    lambda block: _bf16_copy(block, "bf16 weights"),
    _multiply_either,
)


def _attend_head(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    out: np.ndarray,
    scale: float,
    products: _Products,
    keys_transposed: bool,
    mask: np.ndarray | None,
) -> None:
    """One head: q (T, Dh), k (S, Dh) or (Dh, S), v (S, Dv) -> out (T, Dv), one block of queries at a time."""
    q, k, v = products.operands(q, k, v, scale)
    length, rows = q.shape[0], host_math.ROWS_PER_BLOCK
    scores = np.empty((min(rows, length), v.shape[0]), np.float32)
    direct = out.strides[-1] == out.itemsize  # oneDNN writes rows with any stride, not strided columns
    for start in range(0, length, rows):
        stop = min(start + rows, length)
        block = scores[: stop - start]
        products.multiply(q[start:stop], k, block, b_transposed=not keys_transposed)  # (rows, S)
        if mask is not None:
            block += mask[start:stop]
        weights = products.weights(host_math.softmax_np_(block))
        if direct:
            products.multiply(weights, v, out[start:stop])  # (rows, Dv), into the caller's rows
        else:
            out[start:stop] = products.multiply(weights, v, np.empty((stop - start, v.shape[1]), np.float32))
