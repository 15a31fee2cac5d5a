"""Image sampling at computed positions: resample (a coordinate grid), affine (a grid from a 2x3
transform) and crop_resize (boxes resized bilinearly; iOS15/16 `roi` and iOS17 `boxes` forms).

Semantics follow coremltools' op definitions: resample's coordinate modes (unnormalized,
normalized_minus_one_to_one, normalized_zero_to_one, each with or without align_corners) and
padding modes (constant, border, reflection, symmetric), applied to every interpolation tap;
crop_resize's box modes and its sampling modes as the Core ML spec's SamplingMode defines them
for an interval [start, end] (linspace rules), with samples outside the image set to `pad_value`
(as in TF's crop_and_resize extrapolation). Positions are per element, so they are gathered from
a flattened (B, C, H*W) image.
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np

from .registry import OpContext, as_bool, as_float, as_int, as_str, register


def _gather(x: mx.array, iy: mx.array, ix: mx.array) -> mx.array:
    """x[b, :, iy[b, p], ix[b, p]] for in-range int indices: (B, C, H, W), (B, P) -> (B, C, P)."""
    batch, channels, height, width = x.shape
    flat = x.reshape(batch, channels, height * width)  # (B, C, H*W)
    index = (iy * width + ix)[:, None, :]
    return mx.take_along_axis(flat, mx.broadcast_to(index, (batch, channels, index.shape[-1])), axis=2)


def _fold_index(i: mx.array, n: int, padding: str) -> mx.array:
    """An integer tap index mapped into [0, n) by the padding mode (constant: clamped, masked later)."""
    if padding in ("constant", "border") or n == 1:
        return mx.clip(i, 0, n - 1)
    period = 2 * (n - 1) if padding == "reflection" else 2 * n
    j = i - period * mx.floor_divide(i, period)  # in [0, period)
    if padding == "reflection":  # ... 2 1 | 0 1 2 | 1 0 ...: the edge is not repeated
        return mx.where(j >= n, period - j, j)
    return mx.where(j >= n, period - 1 - j, j)  # symmetric: ... 1 0 | 0 1 2 | 2 1 ...


def _tap(x, iy, ix, padding: str, pad_value: float) -> mx.array:
    """Values at integer taps (B, P) with the padding applied: (B, C, P)."""
    height, width = x.shape[2], x.shape[3]
    values = _gather(x, _fold_index(iy, height, padding), _fold_index(ix, width, padding))
    if padding != "constant":
        return values
    inside = (iy >= 0) & (iy < height) & (ix >= 0) & (ix < width)
    return mx.where(inside[:, None, :], values, mx.array(pad_value, dtype=values.dtype))


def sample(x: mx.array, py: mx.array, px: mx.array, method: str, padding: str, pad_value: float) -> mx.array:
    """Sample (B, C, H, W) at pixel positions py, px of shape (B, Ho, Wo): (B, C, Ho, Wo)."""
    batch, out_h, out_w = py.shape
    py, px = py.reshape(batch, -1), px.reshape(batch, -1)  # (B, P)
    image = x.astype(mx.float32)
    if method == "nearest":
        iy, ix = mx.floor(py + 0.5).astype(mx.int32), mx.floor(px + 0.5).astype(mx.int32)
        out = _tap(image, iy, ix, padding, pad_value)
    else:
        y0, x0 = mx.floor(py), mx.floor(px)
        fy, fx = (py - y0)[:, None, :], (px - x0)[:, None, :]
        y0, x0 = y0.astype(mx.int32), x0.astype(mx.int32)

        def row(y: mx.array) -> mx.array:  # (B, C, P): the two taps of row y, blended along x
            return _tap(image, y, x0, padding, pad_value) * (1 - fx) + _tap(image, y, x0 + 1, padding, pad_value) * fx

        out = row(y0) * (1 - fy) + row(y0 + 1) * fy
    return out.reshape(batch, x.shape[1], out_h, out_w).astype(x.dtype)


def to_pixels(c: mx.array, n: int, mode: str, align_corners: bool) -> mx.array:
    """Coordinates in `mode` along an axis of n pixels, as pixel positions (0 = the first center)."""
    if mode == "unnormalized":
        return c
    if mode == "normalized_minus_one_to_one":
        return (c + 1) * (n - 1) / 2 if align_corners else ((c + 1) * n - 1) / 2
    if mode == "normalized_zero_to_one":
        return c * (n - 1) if align_corners else c * n - 0.5
    raise ValueError(f"unknown coordinates_mode '{mode}'")


def from_pixels(i: np.ndarray, n: int, mode: str, align_corners: bool) -> np.ndarray:
    """The inverse of `to_pixels`: pixel positions of an n-pixel axis in `mode` coordinates."""
    if mode == "unnormalized":
        return i
    if mode == "normalized_minus_one_to_one":
        return (2 * i / (n - 1) - 1 if n > 1 else np.zeros_like(i)) if align_corners else (2 * i + 1) / n - 1
    if mode == "normalized_zero_to_one":
        return (i / (n - 1) if n > 1 else np.full_like(i, 0.5)) if align_corners else (i + 0.5) / n
    raise ValueError(f"unknown coordinates_mode '{mode}'")


_GRID_PARAMS = ("sampling_mode", "padding_mode", "padding_value", "coordinates_mode", "align_corners")


@register("resample", static=_GRID_PARAMS)
def resample(
    ctx: OpContext,
    x: mx.array,
    coordinates: mx.array,
    sampling_mode,
    padding_mode,
    padding_value,
    coordinates_mode,
    align_corners,
) -> mx.array:
    """coordinates (B, Ho, Wo, 2) as (x, y) pairs: output (B, C, Ho, Wo)."""
    mode, align = as_str(coordinates_mode), as_bool(align_corners)
    coords = coordinates.astype(mx.float32)
    px = to_pixels(coords[..., 0], x.shape[3], mode, align)
    py = to_pixels(coords[..., 1], x.shape[2], mode, align)
    return sample(x, py, px, as_str(sampling_mode).lower(), as_str(padding_mode).lower(), as_float(padding_value))


@register("affine", static=("output_height", "output_width") + _GRID_PARAMS)
def affine(
    ctx: OpContext,
    x: mx.array,
    transform_matrix: mx.array,
    output_height,
    output_width,
    sampling_mode,
    padding_mode,
    padding_value,
    coordinates_mode,
    align_corners,
) -> mx.array:
    """Output pixel (h, w) samples x at [a0 a1 a2; b0 b1 b2] @ (w', h', 1), in coordinates_mode units."""
    mode, align = as_str(coordinates_mode), as_bool(align_corners)
    out_h, out_w = as_int(output_height), as_int(output_width)
    gy = from_pixels(np.arange(out_h, dtype=np.float64), out_h, mode, align)
    gx = from_pixels(np.arange(out_w, dtype=np.float64), out_w, mode, align)
    grid_x = mx.array(np.broadcast_to(gx[None, :], (out_h, out_w)).astype(np.float32))  # (Ho, Wo)
    grid_y = mx.array(np.broadcast_to(gy[:, None], (out_h, out_w)).astype(np.float32))
    m = mx.broadcast_to(transform_matrix.astype(mx.float32), (x.shape[0], 6))[:, :, None, None]  # (B, 6, 1, 1)
    cx = m[:, 0] * grid_x + m[:, 1] * grid_y + m[:, 2]  # (B, Ho, Wo)
    cy = m[:, 3] * grid_x + m[:, 4] * grid_y + m[:, 5]
    px, py = to_pixels(cx, x.shape[3], mode, align), to_pixels(cy, x.shape[2], mode, align)
    return sample(x, py, px, as_str(sampling_mode).lower(), as_str(padding_mode).lower(), as_float(padding_value))
