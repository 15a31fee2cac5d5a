"""scaled_dot_product_attention (iOS18): softmax(Q K^T / sqrt(E) + mask) V, a boolean mask keeping
the positions that are True. Runs on MLX's fused kernel, which takes rank-4 (B, H, L, E) inputs;
without a mask, float32 on the CPU, on the product encoder's oneDNN kernels (see host.py)."""

from __future__ import annotations

import math

import mlx.core as mx

from . import host
from .registry import OpContext, register


def _as_rank4(t: mx.array) -> mx.array:
    if t.ndim == 4:
        return t
    if t.ndim < 4:
        return t.reshape((1,) * (4 - t.ndim) + t.shape)
    return t.reshape((-1,) + t.shape[-3:])  # (B*..., H, L, E)


@register("scaled_dot_product_attention")
def scaled_dot_product_attention(
    ctx: OpContext, query: mx.array, key: mx.array, value: mx.array, attn_mask: mx.array | None = None
) -> mx.array:
    lead = query.shape[:-2]
    out_shape = lead + (query.shape[-2], value.shape[-1])  # (B, *?, L, EV)
    batch = mx.broadcast_shapes(query.shape[:-2], key.shape[:-2], value.shape[:-2])
    q = _as_rank4(mx.broadcast_to(query, batch + query.shape[-2:]))
    k = _as_rank4(mx.broadcast_to(key, batch + key.shape[-2:]))
    v = _as_rank4(mx.broadcast_to(value, batch + value.shape[-2:]))
    scale = 1 / math.sqrt(query.shape[-1])
    if attn_mask is None and host.onednn_applies(q.dtype) and k.dtype == v.dtype == mx.float32:
        return host.onednn_attention(q, k, v, scale).reshape(out_shape)  # the product encoder's kernels
    mask = None
    if attn_mask is not None:
        full = mx.broadcast_to(attn_mask, batch + (query.shape[-2], key.shape[-2]))
        mask = _as_rank4(full if full.dtype == mx.bool_ else full.astype(q.dtype))
    out = mx.fast.scaled_dot_product_attention(q, k, v, scale=scale, mask=mask)
    return out.reshape(out_shape)
