"""Activations (coremltools iOS15/iOS17 activation.py): relu family, gelu modes, softmax, per-channel
prelu and softplus_parametric (channel axis 1). Parameters are cast to the input's dtype first, as
Core ML evaluates a float16 program in float16. Exact GELU and last-axis softmax go through numpy
(host.py) where it applies: on the CPU, computing in float32, outside mx.compile."""

from __future__ import annotations

import math

import mlx.core as mx

from . import host, host_unary
from .registry import OpContext, as_int, as_str, compute_dtype, norm_axis, register


def like(param: mx.array, x: mx.array) -> mx.array:
    return param.astype(x.dtype) if param.dtype != x.dtype else param


def channel_broadcast(param: mx.array, x: mx.array) -> mx.array:
    """A per-channel vector (C,) shaped to broadcast over axis 1 of x (B, C, ...)."""
    return like(param, x).reshape((1, -1) + (1,) * (x.ndim - 2))  # (1, C, 1, ...)


@register("relu")
def relu(ctx: OpContext, x: mx.array) -> mx.array:
    return mx.maximum(x, 0)


@register("relu6")
def relu6(ctx: OpContext, x: mx.array) -> mx.array:
    return mx.minimum(mx.maximum(x, 0), 6)


@register("sigmoid")
def sigmoid(ctx: OpContext, x: mx.array) -> mx.array:
    return mx.sigmoid(x)


@register("silu")
def silu(ctx: OpContext, x: mx.array) -> mx.array:
    return x * mx.sigmoid(x)


@register("softsign")
def softsign(ctx: OpContext, x: mx.array) -> mx.array:
    return x / (1 + mx.abs(x))


@register("softplus")
def softplus(ctx: OpContext, x: mx.array) -> mx.array:
    return mx.logaddexp(x, mx.zeros_like(x))


@register("gelu", static=("mode",))
def gelu(ctx: OpContext, x: mx.array, mode: str = "EXACT") -> mx.array:
    wide = compute_dtype(x.dtype)  # float16 on the CPU: MLX's float16 erf/tanh are slower there
    mode = as_str(mode)
    if mode == "EXACT" and host.applies(wide):  # MLX's CPU erf is scalar: numpy's is ~10x faster
        return host.gelu_exact(x, wide).astype(x.dtype)
    return _gelu(x.astype(wide), mode).astype(x.dtype)


def _gelu(x: mx.array, mode: str) -> mx.array:
    if mode == "TANH_APPROXIMATION":
        inner = math.sqrt(2 / math.pi) * (x + 0.044715 * x * x * x)
        return 0.5 * x * (1 + mx.tanh(inner))
    if mode == "SIGMOID_APPROXIMATION":
        return x * mx.sigmoid(1.702 * x)
    return 0.5 * x * (1 + mx.erf(x * (1 / math.sqrt(2))))


@register("elu")
def elu(ctx: OpContext, x: mx.array, alpha: mx.array) -> mx.array:
    return mx.where(x > 0, x, like(alpha, x) * (mx.exp(x) - 1))


@register("leaky_relu")
def leaky_relu(ctx: OpContext, x: mx.array, alpha: mx.array) -> mx.array:
    if host_unary.applies(x) and (slope := host_unary.unit_slope(alpha)) is not None:  # numpy: 2 passes, not 3
        return host_unary.leaky_relu(x, slope)
    return mx.where(x >= 0, x, x * like(alpha, x))


@register("thresholded_relu")
def thresholded_relu(ctx: OpContext, x: mx.array, alpha: mx.array) -> mx.array:
    return mx.where(x >= like(alpha, x), x, mx.zeros_like(x))


@register("clamped_relu")
def clamped_relu(ctx: OpContext, x: mx.array, alpha: mx.array, beta: mx.array) -> mx.array:
    alpha, beta = like(alpha, x), like(beta, x)
    positive = mx.minimum(mx.maximum(x, 0), beta)
    negative = mx.minimum(mx.minimum(x, 0) * alpha, beta)
    return positive + negative


@register("linear_activation")
def linear_activation(ctx: OpContext, x: mx.array, alpha: mx.array, beta: mx.array) -> mx.array:
    return like(alpha, x) * x + like(beta, x)


@register("scaled_tanh")
def scaled_tanh(ctx: OpContext, x: mx.array, alpha: mx.array, beta: mx.array) -> mx.array:
    return like(alpha, x) * mx.tanh(x * like(beta, x))


@register("sigmoid_hard")
def sigmoid_hard(ctx: OpContext, x: mx.array, alpha: mx.array, beta: mx.array) -> mx.array:
    return mx.clip(like(alpha, x) * x + like(beta, x), 0, 1)


@register("prelu")
def prelu(ctx: OpContext, x: mx.array, alpha: mx.array) -> mx.array:
    return mx.maximum(x, 0) + mx.minimum(x, 0) * channel_broadcast(alpha, x)


@register("softplus_parametric")
def softplus_parametric(ctx: OpContext, x: mx.array, alpha: mx.array, beta: mx.array) -> mx.array:
    scaled = x * channel_broadcast(beta, x)
    return channel_broadcast(alpha, x) * mx.logaddexp(scaled, mx.zeros_like(scaled))


@register("softmax", static=("axis",))
def softmax(ctx: OpContext, x: mx.array, axis: int = -1) -> mx.array:
    wide = compute_dtype(x.dtype)  # float16 on the CPU: ~2x faster through float32 (measured)
    axis = norm_axis(as_int(axis), x.ndim)
    if axis == x.ndim - 1 and host.applies(wide):  # MLX's CPU exp is scalar: numpy's is vectorized
        return host.softmax_last_axis(x, wide).astype(x.dtype)
    return mx.softmax(x.astype(wide), axis=axis, precise=wide == mx.float16).astype(x.dtype)
