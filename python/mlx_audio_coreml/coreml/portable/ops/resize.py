"""Resizing of the trailing spatial dims: upsample_nearest_neighbor / upsample_bilinear (scale
factors), resize_nearest_neighbor / resize_bilinear (target sizes), and iOS17 `resize`.

Bilinear sampling grids follow the `sampling_mode` notes of coremltools' resize_bilinear
(STRICT_ALIGN_CORNERS, ALIGN_CORNERS, DEFAULT, OFFSET_CORNERS, UNALIGN_CORNERS); each axis is
interpolated separately from a host-computed grid, so the grid costs nothing per call.
"""

from __future__ import annotations

import math

import mlx.core as mx
import numpy as np

from .registry import OpContext, as_bool, as_float, as_int, as_ints, as_str, register


def sampling_grid(size_in: int, size_out: int, mode: str) -> np.ndarray:
    """Fractional source coordinates of each output position along one axis."""
    i = np.arange(size_out, dtype=np.float64)
    if mode in ("STRICT_ALIGN_CORNERS", "ALIGN_CORNERS"):
        if size_out == 1:
            grid = np.full(1, (size_in - 1) / 2 if mode == "ALIGN_CORNERS" else 0.0)
        else:
            grid = i * (size_in - 1) / (size_out - 1)
    elif mode == "OFFSET_CORNERS":
        delta = max(1, size_in - 1) / size_out
        grid = 0.5 * delta + i * delta
    elif mode == "UNALIGN_CORNERS":
        spacing = size_in / size_out
        grid = i * spacing + 0.5 * spacing - 0.5
    else:  # DEFAULT
        grid = i * size_in / size_out
    return np.clip(grid, 0, size_in - 1)


def _linear_axis(x: mx.array, axis: int, size_out: int, mode: str) -> mx.array:
    size_in = x.shape[axis]
    grid = sampling_grid(size_in, size_out, mode)
    low = np.floor(grid).astype(np.int32)
    high = np.minimum(low + 1, size_in - 1)
    frac = (grid - low).astype(np.float32)
    shape = [1] * x.ndim
    shape[axis] = size_out
    weight = mx.array(frac).reshape(shape).astype(x.dtype)
    a = mx.take(x, mx.array(low), axis=axis)
    b = mx.take(x, mx.array(high), axis=axis)
    return a + (b - a) * weight


def _nearest_axis(x: mx.array, axis: int, size_out: int) -> mx.array:
    """Source index floor(i * in / out): the scale is recomputed from the sizes, as Core ML does
    for fractional upsample factors."""
    size_in = x.shape[axis]
    step = size_in / size_out
    index = np.minimum(np.floor(np.arange(size_out) * step + 1e-6).astype(np.int32), size_in - 1)
    return mx.take(x, mx.array(index), axis=axis)


def _nearest_on_grid(x: mx.array, axis: int, size_out: int, mode: str) -> mx.array:
    """iOS17 `resize` with NEAREST_NEIGHBOR: the sampling mode's grid, rounded to the nearest
    source index (e.g. DEFAULT 2 -> 3 takes rows 0, 1, 1)."""
    grid = sampling_grid(x.shape[axis], size_out, mode)
    index = np.minimum(np.floor(grid + 0.5), x.shape[axis] - 1).astype(np.int32)
    return mx.take(x, mx.array(index), axis=axis)


def _scale(value, default: float = 1.0) -> float:
    return default if value is None else as_float(value)


@register("upsample_nearest_neighbor", static=("scale_factor_height", "scale_factor_width"))
def upsample_nearest_neighbor(
    ctx: OpContext, x: mx.array, scale_factor_height=None, scale_factor_width=None
) -> mx.array:
    sh, sw = _scale(scale_factor_height), _scale(scale_factor_width)
    y = _nearest_axis(x, x.ndim - 2, math.floor(x.shape[-2] * sh))
    return _nearest_axis(y, x.ndim - 1, math.floor(x.shape[-1] * sw))


@register(
    "upsample_bilinear", static=("scale_factor_height", "scale_factor_width", "align_corners", "half_pixel_centers")
)
def upsample_bilinear(
    ctx: OpContext,
    x: mx.array,
    scale_factor_height=None,
    scale_factor_width=None,
    align_corners=None,
    half_pixel_centers=None,
) -> mx.array:
    align = True if align_corners is None else as_bool(align_corners)
    half_pixel = (not align) if half_pixel_centers is None else as_bool(half_pixel_centers)
    mode = "STRICT_ALIGN_CORNERS" if align else ("UNALIGN_CORNERS" if half_pixel else "DEFAULT")
    height = math.floor(x.shape[-2] * _scale(scale_factor_height))
    width = math.floor(x.shape[-1] * _scale(scale_factor_width))
    return _linear_axis(_linear_axis(x, x.ndim - 2, height, mode), x.ndim - 1, width, mode)


@register("resize_nearest_neighbor", static=("target_size_height", "target_size_width"))
def resize_nearest_neighbor(ctx: OpContext, x: mx.array, target_size_height, target_size_width) -> mx.array:
    y = _nearest_axis(x, x.ndim - 2, as_int(target_size_height))
    return _nearest_axis(y, x.ndim - 1, as_int(target_size_width))


@register("resize_bilinear", static=("target_size_height", "target_size_width", "sampling_mode"))
def resize_bilinear(
    ctx: OpContext, x: mx.array, target_size_height=1, target_size_width=1, sampling_mode="DEFAULT"
) -> mx.array:
    mode = as_str(sampling_mode)
    y = _linear_axis(x, x.ndim - 2, as_int(target_size_height), mode)
    return _linear_axis(y, x.ndim - 1, as_int(target_size_width), mode)


@register("resize", static=("shape", "resized_dims", "interpolation_mode", "sampling_mode"))
def resize(
    ctx: OpContext, x: mx.array, shape, resized_dims, interpolation_mode="LINEAR", sampling_mode="DEFAULT"
) -> mx.array:
    target = as_ints(shape)
    count = as_int(resized_dims)
    mode = as_str(sampling_mode)
    for k in range(1, count + 1):
        axis = x.ndim - k
        size = target[-k] if target[-k] != 0 else x.shape[axis]
        if as_str(interpolation_mode) == "NEAREST_NEIGHBOR":
            x = _nearest_on_grid(x, axis, size, mode)
        else:
            x = _linear_axis(x, axis, size, mode)
    return x
