"""iOS17 activation quantization: `quantize` (float -> int8/uint8) and `dequantize` (back to float),
with a scalar scale/zero point or one per slice along `axis`:

    quantize:   clip(round(x / scale) + zero_point) to the integer type's range (round half to even)
    dequantize: scale * (q - zero_point)
"""

from __future__ import annotations

import mlx.core as mx

from .registry import OpContext, as_int, as_str, norm_axis, register

_RANGES = {"int8": (mx.int8, -128, 127), "uint8": (mx.uint8, 0, 255)}


def _along(param: mx.array, x: mx.array, axis) -> mx.array:
    """A scalar as is; a vector (C,) shaped to broadcast along `axis` of x."""
    if param.ndim == 0 or axis is None:
        return param
    shape = [1] * x.ndim
    shape[norm_axis(as_int(axis), x.ndim)] = -1
    return param.reshape(shape)  # (1, .., C, .., 1)


@register("quantize", static=("axis", "output_dtype"))
def quantize(
    ctx: OpContext, input: mx.array, scale: mx.array, output_dtype="int8", zero_point: mx.array | None = None, axis=None
) -> mx.array:
    dtype, low, high = _RANGES[as_str(output_dtype)]
    q = mx.round(input.astype(mx.float32) / _along(scale, input, axis).astype(mx.float32))
    if zero_point is not None:
        q = q + _along(zero_point, input, axis).astype(mx.float32)
    return mx.clip(q, low, high).astype(dtype)


@register("dequantize", static=("axis",))
def dequantize(
    ctx: OpContext, input: mx.array, scale: mx.array, zero_point: mx.array | None = None, axis=None
) -> mx.array:
    x = input.astype(mx.float32)
    if zero_point is not None:
        x = x - _along(zero_point, input, axis).astype(mx.float32)
    return (x * _along(scale, input, axis).astype(mx.float32)).astype(scale.dtype)
