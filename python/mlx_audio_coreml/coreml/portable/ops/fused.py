"""Internal ops that the load-time rewrites (fuse.py, layout.py, fuse_gelu.py) put in place of MIL
op patterns. They are not in the MIL op table (`lookup` never returns them): a package can only
reach them through a rewrite that has proved the pattern it replaces computes the same values.
Layout terms: a channels-first tensor is (N, C, *D) as MIL defines it; its channels-last form is
(N, *D, C)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mlx.core as mx

from ....cpu import host_math
from . import host, host_products
from .activation import gelu
from .conv import conv_channels_last
from .linear import linear
from .registry import OpContext, OpDef, compute_dtype


def internal_op(name: str, fn: Callable[..., Any], static: tuple[str, ...] = ()) -> OpDef:
    return OpDef(name, fn, frozenset(static), frozenset(), foldable=False)


def _by_head(t: mx.array, heads: int, channels_first_input: bool) -> mx.array:
    batch = t.shape[0]
    if channels_first_input:  # (B, D, S) -> (B, H, Dh, S) -> (B, H, S, Dh)
        return t.reshape(batch, heads, -1, t.shape[-1]).swapaxes(-1, -2)
    return t.reshape(batch, t.shape[1], heads, -1).transpose(0, 2, 1, 3)  # (B, S, D) -> (B, H, S, Dh)


def _join_heads(t: mx.array, channels_first_output: bool) -> mx.array:
    batch, heads, length, head_dim = t.shape  # (B, H, S, Dh)
    if channels_first_output:
        return t.swapaxes(-1, -2).reshape(batch, heads * head_dim, length)  # (B, D, S)
    return t.transpose(0, 2, 1, 3).reshape(batch, length, heads * head_dim)  # (B, S, D)


def multi_head_attention(
    ctx: OpContext,
    query: mx.array,
    key: mx.array,
    value: mx.array,
    heads: int,
    scale: float,
    channels_first: bool,
) -> mx.array:
    """softmax(scale * q_h k_h^T) v_h for every head h, heads laid side by side on the channel axis.
    Inputs (B, D, S) when `channels_first`, else (B, S, D); the output has the same layout."""
    if host.onednn_applies(query.dtype) and key.dtype == value.dtype == mx.float32:  # the product encoder's kernels
        merged = host.onednn_multi_head_attention(query, key, value, heads, scale, channels_first)  # (B, Sq, D)
        return merged.swapaxes(1, 2) if channels_first else merged
    wide = compute_dtype(query.dtype)  # MLX's float16 attention is ~5x slower on the CPU (measured)
    q, k, v = (_by_head(t, heads, channels_first).astype(wide) for t in (query, key, value))  # (B, H, S, Dh)
    if host.applies(wide):  # softmax on numpy, one head and block of queries at a time (host_math)
        merged = host.attention(q, k, v, scale)  # (B, Sq, D)
        return (merged.swapaxes(1, 2) if channels_first else merged).astype(query.dtype)
    out = mx.fast.scaled_dot_product_attention(q, k, v, scale=scale)  # (B, H, Sq, Dh)
    return _join_heads(out, channels_first).astype(query.dtype)


def pointwise_channels_last(ctx: OpContext, x: mx.array, weight: mx.array, bias: mx.array | None = None) -> mx.array:
    """A 1x1 convolution on channels-last x (N, *D, C): x @ W^T (+ b), channels-last out."""
    if host_products.applies(ctx, x, {"weight": weight, "bias": bias}):  # oneDNN, as the product encoder
        return host_products.linear(ctx, x, weight, bias)
    dtype = compute_dtype(x.dtype)
    w = ctx.derived(
        "pointwise", "weight", lambda: weight.reshape(weight.shape[0], -1).astype(dtype), (weight, dtype)
    )  # (O, C)
    if bias is None:
        return mx.matmul(x.astype(dtype), w.T).astype(x.dtype)  # (N, *D, O)
    return mx.addmm(bias.astype(dtype), x.astype(dtype), w.T).astype(x.dtype)  # bias added by the GEMM


def conv_to_channels_last(
    ctx: OpContext,
    x: mx.array,
    weight: mx.array,
    bias: mx.array | None = None,
    input_channels_last: bool = False,
    **params: Any,
) -> mx.array:
    """MIL's conv with its output left channels-last (and its input already so, when flagged)."""
    x_last = x if input_channels_last else mx.moveaxis(x, 1, -1)  # (N, *D, C)
    return conv_channels_last(ctx, x_last, weight, bias, **params)


def conv_add(
    ctx: OpContext,
    x: mx.array,
    weight: mx.array,
    residual: mx.array,
    bias: mx.array | None = None,
    input_channels_last: bool = False,
    **params: Any,
) -> mx.array:
    """conv_to_channels_last(x) + residual (fuse_residual.py's node): on the host path the conv
    accumulates into a copy of the residual; otherwise the two ops run as they would unfused."""
    x_last = x if input_channels_last else mx.moveaxis(x, 1, -1)  # (N, *D, C)
    return conv_channels_last(ctx, x_last, weight, bias, residual=residual, **params)


def product_gelu(ctx: OpContext, product: str, **params: Any) -> mx.array:
    """The op `product` (MIL linear, or pointwise_channels_last / conv_to_channels_last above) then
    exact GELU: fuse_gelu.py's node. On the CPU in float32 the GELU works in place on the product's
    fresh output (with oneDNN, a linear's block of rows at a time while it is in cache); otherwise
    the two ops run as they would unfused."""
    x, weight, bias = params["x"], params["weight"], params.get("bias")
    if product != CONV_TO_CHANNELS_LAST.name and host_products.applies(ctx, x, {"weight": weight, "bias": bias}):
        return host_products.linear(ctx, x, weight, bias, activation=host_math.gelu_np_)
    first = {"linear": linear, POINTWISE_CHANNELS_LAST.name: pointwise_channels_last}.get(
        product, conv_to_channels_last
    )
    out = first(ctx, **params)
    if host.applies(out.dtype):
        return host_math.gelu_(out)  # our own new array: nothing else reads it
    return gelu(ctx, out, "EXACT")


def permute(ctx: OpContext, x: mx.array, perm: tuple[int, ...]) -> mx.array:
    return mx.transpose(x, perm)


MULTI_HEAD_ATTENTION = internal_op("portable.multi_head_attention", multi_head_attention)
POINTWISE_CHANNELS_LAST = internal_op("portable.pointwise_channels_last", pointwise_channels_last)
CONV_TO_CHANNELS_LAST = internal_op(
    "portable.conv_to_channels_last",
    conv_to_channels_last,
    static=("strides", "pad_type", "pad", "dilations", "groups"),
)
CONV_ADD = internal_op("portable.conv_add", conv_add, static=tuple(sorted(CONV_TO_CHANNELS_LAST.static)))
PERMUTE = internal_op("portable.permute", permute)
PRODUCT_GELU = internal_op("portable.product_gelu", product_gelu, static=tuple(sorted(CONV_TO_CHANNELS_LAST.static)))
