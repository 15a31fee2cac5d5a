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

import numpy as np

from . import host_math, onednn
from . import pool as host_pool


def split_heads(block: np.ndarray, heads: int) -> np.ndarray:
    """A (T, H * Dh) block seen as (H, T, Dh): a view, head h being columns h Dh .. (h + 1) Dh."""
    length, width = block.shape
    return block.reshape(length, heads, width // heads).transpose(1, 0, 2)  # (H, T, Dh)


def attend(q: np.ndarray, k: np.ndarray, v: np.ndarray, out: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """out[h] = softmax(scale q[h] k[h]^T) v[h] for every head h; returns `out`.

    q (H, T, Dh), k (H, S, Dh), v (H, S, Dv), out (H, T, Dv), all float32; any of them may be a
    strided view (such as `split_heads` of a wider block). Heads go to the host workers.
    """
    heads, length, head_dim = q.shape
    if (
        k.shape[:1] != (heads,)
        or k.shape[2] != head_dim
        or v.shape[:2] != k.shape[:2]
        or out.shape != (heads, length, v.shape[2])
    ):
        raise ValueError(f"attention shapes do not chain: q {q.shape}, k {k.shape}, v {v.shape}, out {out.shape}")
    host_pool.run_all(lambda h: _attend_head(q[h], k[h], v[h], out[h], scale), range(heads))
    return out


def _plain(block: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """A C-contiguous float32 copy of a 2-D block (times `scale`); the block itself when already so."""
    if scale == 1.0:
        return np.ascontiguousarray(block, np.float32)
    return np.multiply(
        block, np.float32(scale), out=np.empty(block.shape, np.float32)
    )  # never in place: q may be shared


def _attend_head(q: np.ndarray, k: np.ndarray, v: np.ndarray, out: np.ndarray, scale: float) -> None:
    """One head: q (T, Dh), k (S, Dh), v (S, Dv) -> out (T, Dv), one block of queries at a time."""
    q, k, v = _plain(q, scale), _plain(k), _plain(v)
    length, rows = q.shape[0], host_math.ROWS_PER_BLOCK
    scores = np.empty((min(rows, length), k.shape[0]), np.float32)
    direct = out.strides[-1] == out.itemsize  # oneDNN writes rows with any stride, not strided columns
    for start in range(0, length, rows):
        stop = min(start + rows, length)
        block = scores[: stop - start]
        onednn.sgemm(q[start:stop], k, block, b_transposed=True)  # (rows, S)
        host_math.softmax_np_(block)
        if direct:
            onednn.sgemm(block, v, out[start:stop])  # (rows, Dv), into the caller's rows
        else:
            out[start:stop] = onednn.sgemm(block, v, np.empty((stop - start, v.shape[1]), np.float32))
