"""Moves between channels, space and batch for (N, C, H, W) tensors, plus crop and sliding_windows.

depth_to_space / space_to_depth use TensorFlow's channel order (block offsets outermost),
pixel_shuffle / pixel_unshuffle PyTorch's (channel outermost); space_to_batch / batch_to_space
follow TensorFlow (block offsets outermost in the batch).
"""

from __future__ import annotations

import mlx.core as mx

from .registry import OpContext, as_int, as_ints, norm_axis, register


@register("depth_to_space", static=("block_size",))
def depth_to_space(ctx: OpContext, x: mx.array, block_size) -> mx.array:
    b = as_int(block_size)
    n, c, h, w = x.shape
    y = x.reshape(n, b, b, c // (b * b), h, w)  # (N, bi, bj, C', H, W)
    y = mx.transpose(y, (0, 3, 4, 1, 5, 2))  # (N, C', H, bi, W, bj)
    return y.reshape(n, c // (b * b), h * b, w * b)


@register("space_to_depth", static=("block_size",))
def space_to_depth(ctx: OpContext, x: mx.array, block_size) -> mx.array:
    b = as_int(block_size)
    n, c, h, w = x.shape
    y = x.reshape(n, c, h // b, b, w // b, b)  # (N, C, H', bi, W', bj)
    y = mx.transpose(y, (0, 3, 5, 1, 2, 4))  # (N, bi, bj, C, H', W')
    return y.reshape(n, c * b * b, h // b, w // b)


@register("pixel_shuffle", static=("upscale_factor",))
def pixel_shuffle(ctx: OpContext, x: mx.array, upscale_factor) -> mx.array:
    f = as_int(upscale_factor)
    n, c, h, w = x.shape
    y = x.reshape(n, c // (f * f), f, f, h, w)  # (N, C', fi, fj, H, W)
    y = mx.transpose(y, (0, 1, 4, 2, 5, 3))  # (N, C', H, fi, W, fj)
    return y.reshape(n, c // (f * f), h * f, w * f)


@register("pixel_unshuffle", static=("downscale_factor",))
def pixel_unshuffle(ctx: OpContext, x: mx.array, downscale_factor) -> mx.array:
    f = as_int(downscale_factor)
    n, c, h, w = x.shape
    y = x.reshape(n, c, h // f, f, w // f, f)  # (N, C, H', fi, W', fj)
    y = mx.transpose(y, (0, 1, 3, 5, 2, 4))  # (N, C, fi, fj, H', W')
    return y.reshape(n, c * f * f, h // f, w // f)


@register("space_to_batch", static=("block_shape", "paddings"))
def space_to_batch(ctx: OpContext, x: mx.array, block_shape, paddings) -> mx.array:
    b0, b1 = as_ints(block_shape)
    p = as_ints(paddings)
    x = mx.pad(x, [(0, 0), (0, 0), (p[0], p[1]), (p[2], p[3])])
    n, c, h, w = x.shape
    y = x.reshape(n, c, h // b0, b0, w // b1, b1)  # (N, C, H', bi, W', bj)
    y = mx.transpose(y, (3, 5, 0, 1, 2, 4))  # (bi, bj, N, C, H', W')
    return y.reshape(b0 * b1 * n, c, h // b0, w // b1)


@register("batch_to_space", static=("block_shape", "crops"))
def batch_to_space(ctx: OpContext, x: mx.array, block_shape, crops) -> mx.array:
    b0, b1 = as_ints(block_shape)
    cr = as_ints(crops)
    nb, c, h, w = x.shape
    n = nb // (b0 * b1)
    y = x.reshape(b0, b1, n, c, h, w)  # (bi, bj, N, C, H, W)
    y = mx.transpose(y, (2, 3, 4, 0, 5, 1))  # (N, C, H, bi, W, bj)
    y = y.reshape(n, c, h * b0, w * b1)
    return y[:, :, cr[0] : h * b0 - cr[1], cr[2] : w * b1 - cr[3]]


@register("crop", static=("crop_height", "crop_width"))
def crop(ctx: OpContext, x: mx.array, crop_height, crop_width) -> mx.array:
    top, bottom = as_ints(crop_height)
    left, right = as_ints(crop_width)
    return x[..., top : x.shape[-2] - bottom, left : x.shape[-1] - right]


@register("sliding_windows", static=("axis", "size", "stride"))
def sliding_windows(ctx: OpContext, x: mx.array, axis, size, stride=1) -> mx.array:
    axis = norm_axis(as_int(axis), x.ndim)
    size, stride = as_int(size), as_int(stride)
    count = (x.shape[axis] - size) // stride + 1
    windows = [mx.take(x, mx.arange(i * stride, i * stride + size), axis=axis) for i in range(count)]
    return mx.stack(windows, axis=axis)  # (..., count, size, ...)
