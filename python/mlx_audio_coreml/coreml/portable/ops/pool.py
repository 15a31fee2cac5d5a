"""Pooling over 1-3 spatial dims of (N, C, *D): max_pool, avg_pool, l2_pool.

Windows are strided views of the padded input. Output sizes follow coremltools'
`spatial_dimensions_out_shape`, ceil_mode included: the last window may run past the padded input,
and that overflow never counts toward an average (as in PyTorch).
"""

from __future__ import annotations

import math

import mlx.core as mx

from .conv import resolve_padding
from .registry import OpContext, as_bool, as_ints, as_str, register


def _out_size(size: int, k: int, s: int, before: int, after: int, ceil_mode: bool) -> int:
    padded = size + before + after
    if not ceil_mode:
        return (padded - k) // s + 1
    out = math.ceil((padded - k) / s) + 1
    if (out - 1) * s >= size + before and before + after > 0:
        out -= 1
    return out


def _windows(x: mx.array, kernel: list[int], strides: list[int], out: list[int]) -> mx.array:
    """(N, C, *P) -> (N, C, *out, *K): every pooling window as a strided view."""
    x = mx.contiguous(x)
    steps = [1] * x.ndim
    for i in range(x.ndim - 2, -1, -1):
        steps[i] = steps[i + 1] * x.shape[i + 1]
    spatial_steps = steps[2:]
    shape = list(x.shape[:2]) + out + kernel
    strides_el = steps[:2] + [st * s for st, s in zip(spatial_steps, strides)] + spatial_steps
    return mx.as_strided(x, shape, strides_el)


def _pool(x, kernel_sizes, strides, pad_type, pad, ceil_mode, fill: float):
    """Padded windows (N, C, *out, *K), and the masks of real and of explicitly padded elements."""
    kernel = as_ints(kernel_sizes)
    n = len(kernel)
    strides = as_ints(strides) if strides is not None else [1] * n
    pads = resolve_padding(
        as_str(pad_type).lower(), as_ints(pad) if pad is not None else None, x.shape[2:], kernel, strides, [1] * n
    )
    ceil_mode = as_bool(ceil_mode) if ceil_mode is not None else False
    out = [_out_size(d, k, s, b, a, ceil_mode) for d, k, s, (b, a) in zip(x.shape[2:], kernel, strides, pads)]
    # overflow: what the last window needs beyond the explicit padding (ceil mode only)
    extra = [
        max(0, (o - 1) * s + k - (d + b + a)) for o, s, k, d, (b, a) in zip(out, strides, kernel, x.shape[2:], pads)
    ]
    widths = [(0, 0), (0, 0)] + [(b, a + e) for (b, a), e in zip(pads, extra)]
    padded = mx.pad(x, widths, constant_values=fill)
    ones = mx.ones((1, 1) + tuple(x.shape[2:]), dtype=mx.float32)
    real = mx.pad(ones, widths)
    explicit = mx.pad(
        mx.pad(ones, [(0, 0), (0, 0)] + pads, constant_values=1.0), [(0, 0), (0, 0)] + [(0, e) for e in extra]
    )
    axes = tuple(range(2 + n, 2 + 2 * n))
    return (
        _windows(padded, kernel, strides, out),
        _windows(real, kernel, strides, out),
        _windows(explicit, kernel, strides, out),
        axes,
    )


@register("max_pool", static=("kernel_sizes", "strides", "pad_type", "pad", "ceil_mode"))
def max_pool(ctx: OpContext, x: mx.array, kernel_sizes, pad_type, strides=None, pad=None, ceil_mode=None) -> mx.array:
    windows, _, _, axes = _pool(x, kernel_sizes, strides, pad_type, pad, ceil_mode, -math.inf)
    return mx.max(windows, axis=axes)


@register(
    "avg_pool", static=("kernel_sizes", "strides", "pad_type", "pad", "ceil_mode", "exclude_padding_from_average")
)
def avg_pool(
    ctx: OpContext,
    x: mx.array,
    kernel_sizes,
    pad_type,
    strides=None,
    pad=None,
    ceil_mode=None,
    exclude_padding_from_average=False,
) -> mx.array:
    windows, real, explicit, axes = _pool(x, kernel_sizes, strides, pad_type, pad, ceil_mode, 0.0)
    counted = real if as_bool(exclude_padding_from_average) else explicit
    total = mx.sum(windows.astype(mx.float32), axis=axes)
    return (total / mx.maximum(mx.sum(counted, axis=axes), 1.0)).astype(x.dtype)


@register("l2_pool", static=("kernel_sizes", "strides", "pad_type", "pad", "ceil_mode"))
def l2_pool(ctx: OpContext, x: mx.array, kernel_sizes, pad_type, strides=None, pad=None, ceil_mode=None) -> mx.array:
    windows, _, _, axes = _pool(x, kernel_sizes, strides, pad_type, pad, ceil_mode, 0.0)
    return mx.sqrt(mx.sum(mx.square(windows.astype(mx.float32)), axis=axes)).astype(x.dtype)
