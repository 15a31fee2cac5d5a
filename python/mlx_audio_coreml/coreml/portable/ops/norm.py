"""Normalizations: batch_norm and instance_norm (channels on axis 1), layer_norm over any axes,
l2_norm over the last three dims, local_response_norm across channels. float16 inputs are
normalized in float32 and cast back, so statistics do not overflow."""

from __future__ import annotations

import mlx.core as mx

from .registry import OpContext, as_float, as_int, as_ints, compute_dtype, norm_axis, register


def _per_channel(v: mx.array, rank: int) -> mx.array:
    return v.reshape((1, -1) + (1,) * (rank - 2))  # (C,) -> (1, C, 1, ...)


def _eps(epsilon, default: float) -> float:
    return default if epsilon is None else as_float(epsilon)


@register("batch_norm", static=("epsilon",))
def batch_norm(
    ctx: OpContext,
    x: mx.array,
    mean: mx.array,
    variance: mx.array,
    gamma: mx.array | None = None,
    beta: mx.array | None = None,
    epsilon=None,
) -> mx.array:
    scale = mx.rsqrt(variance.astype(mx.float32) + _eps(epsilon, 1e-5))
    if gamma is not None:
        scale = scale * gamma.astype(mx.float32)
    shift = -mean.astype(mx.float32) * scale
    if beta is not None:
        shift = shift + beta.astype(mx.float32)
    y = x.astype(mx.float32) * _per_channel(scale, x.ndim) + _per_channel(shift, x.ndim)
    return y.astype(x.dtype)


@register("instance_norm", static=("epsilon",))
def instance_norm(
    ctx: OpContext, x: mx.array, gamma: mx.array | None = None, beta: mx.array | None = None, epsilon=None
) -> mx.array:
    axes = tuple(range(2, x.ndim))
    y = _normalize(x.astype(mx.float32), axes, _eps(epsilon, 1e-5))
    if gamma is not None:
        y = y * _per_channel(gamma.astype(mx.float32), x.ndim)
    if beta is not None:
        y = y + _per_channel(beta.astype(mx.float32), x.ndim)
    return y.astype(x.dtype)


def _normalize(x: mx.array, axes: tuple[int, ...], eps: float) -> mx.array:
    centered = x - mx.mean(x, axis=axes, keepdims=True)
    return centered * mx.rsqrt(mx.mean(mx.square(centered), axis=axes, keepdims=True) + eps)


@register("layer_norm", static=("axes", "epsilon"))
def layer_norm(
    ctx: OpContext,
    x: mx.array,
    axes=None,
    gamma: mx.array | None = None,
    beta: mx.array | None = None,
    epsilon=None,
) -> mx.array:
    eps = _eps(epsilon, 1e-5)
    axes = sorted({norm_axis(a, x.ndim) for a in as_ints(axes)}) if axes is not None else list(range(x.ndim))
    if axes == [x.ndim - 1]:
        # the fused kernel normalizes the last axis and accumulates in float32; its float16
        # version is ~3x slower than float32 on the CPU (measured), so widen there
        wide = compute_dtype(x.dtype)
        weight = None if gamma is None else gamma.astype(wide)
        bias = None if beta is None else beta.astype(wide)
        return mx.fast.layer_norm(x.astype(wide), weight, bias, eps).astype(x.dtype)
    normalized_shape = tuple(x.shape[i] if i in axes else 1 for i in range(x.ndim))
    y = _normalize(x.astype(mx.float32), tuple(axes), eps)
    if gamma is not None:
        y = y * gamma.astype(mx.float32).reshape(normalized_shape)
    if beta is not None:
        y = y + beta.astype(mx.float32).reshape(normalized_shape)
    return y.astype(x.dtype)


@register("l2_norm", static=("epsilon",))
def l2_norm(ctx: OpContext, x: mx.array, epsilon=None) -> mx.array:
    axes = tuple(range(max(0, x.ndim - 3), x.ndim))
    x32 = x.astype(mx.float32)
    norm = mx.sqrt(mx.sum(mx.square(x32), axis=axes, keepdims=True) + _eps(epsilon, 1e-6))
    return (x32 / norm).astype(x.dtype)


@register("local_response_norm", static=("size", "alpha", "beta", "k"))
def local_response_norm(ctx: OpContext, x: mx.array, size, alpha=None, beta=None, k=None) -> mx.array:
    size = as_int(size)
    alpha = 1e-4 if alpha is None else as_float(alpha)
    beta = 0.75 if beta is None else as_float(beta)
    k = 1.0 if k is None else as_float(k)
    x32 = x.astype(mx.float32)
    squares = mx.square(x32)
    padding = [(0, 0)] * x.ndim
    padding[1] = (size // 2, (size - 1) // 2)
    padded = mx.pad(squares, padding)  # channel window centred on each channel, as PyTorch pads it
    channels = x.shape[1]
    window = sum(padded[:, i : i + channels] for i in range(size))
    return (x32 / mx.power(k + alpha / size * window, beta)).astype(x.dtype)
