"""Compression ops (constexpr_*): decompressed once at load, in numpy, into dense constants.

iOS16 forms: affine_dequantize (scale * (q - zero_point) along `axis`), cast, lut_to_dense with
bit-packed uint8 indices and a `shape`, sparse_to_dense with a packed bit mask and a `shape`.
iOS18 forms: blockwise_shift_scale (scale * (data - offset), scale/offset repeated blockwise),
lut_to_dense with per-block tables (lut rank = indices rank + 2, optional vector axis),
sparse_to_dense with a uint1 mask, and the sparse-to-sparse lut_to_sparse and
sparse_blockwise_shift_scale, which yield (mask, nonzero values).
"""

from __future__ import annotations

import math
from typing import Any

import mlx.core as mx
import numpy as np

from ..values import CAST_DTYPES, unpack_sub_byte
from .registry import OpContext, as_int, as_str, register


def _dense(ctx: OpContext, value: np.ndarray) -> mx.array:
    dtype = ctx.out_dtype()
    if dtype is not None and value.dtype != dtype and dtype.kind in "fiub":
        value = value.astype(dtype)
    return mx.array(value if value.dtype != np.float64 else value.astype(np.float32))


def _np(value: Any) -> np.ndarray:
    return np.asarray(value)


def _repeat_blocks(param: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Repeat each of the first len(shape) axes of `param` so it covers `shape` block by block."""
    for axis, size in enumerate(shape):
        if param.shape[axis] != size:
            param = np.repeat(param, size // param.shape[axis], axis=axis)
    return param


def _along_axis(param: np.ndarray, rank: int, axis: int) -> np.ndarray:
    if param.ndim == rank:
        return param
    if param.ndim == 0:
        return param.reshape((1,) * rank)
    shape = [1] * rank
    shape[axis % rank] = -1
    return param.reshape(shape)


_STATIC_ALL = (
    "quantized_data",
    "zero_point",
    "scale",
    "axis",
    "source_val",
    "output_dtype",
    "indices",
    "lut",
    "shape",
    "nonzero_data",
    "mask",
    "data",
    "offset",
    "vector_axis",
    "indices_mask",
    "indices_nonzero_data",
    "data_mask",
)


@register("constexpr_affine_dequantize", static=_STATIC_ALL)
def affine_dequantize(ctx: OpContext, quantized_data, zero_point, scale, axis) -> mx.array:
    q = _np(quantized_data)
    axis = as_int(axis)
    zero = _along_axis(_np(zero_point).astype(np.float32), q.ndim, axis)
    s = _along_axis(_np(scale), q.ndim, axis)
    return _dense(ctx, ((q.astype(np.float32) - zero) * s.astype(np.float32)).astype(s.dtype))


@register("constexpr_cast", static=_STATIC_ALL)
def constexpr_cast(ctx: OpContext, source_val, output_dtype) -> mx.array:
    return _dense(ctx, _np(source_val).astype(CAST_DTYPES[as_str(output_dtype)]))


def _lut_dense_ios16(lut: np.ndarray, indices: np.ndarray, shape: list[int]) -> np.ndarray:
    nbits = int(math.log2(lut.size))
    count = int(np.prod(shape))
    flat = unpack_sub_byte(indices.astype(np.uint8), nbits, False, count)
    return lut[flat.astype(np.int32)].reshape(shape)


def lut_to_dense_blocks(indices: np.ndarray, lut: np.ndarray, vector_axis: int | None) -> np.ndarray:
    """iOS18 palettization: per-block tables lut (*blocks, 2^nbits, vector_size)."""
    vector_size = lut.shape[-1]
    rank = indices.ndim
    axis = -1
    if vector_size > 1:
        if vector_axis is None:
            raise ValueError("a lut with vectors (vector_size > 1) needs vector_axis")
        axis = vector_axis % rank
        indices = np.swapaxes(indices, -1, axis)
        lut = np.swapaxes(lut, -3, axis)
    tables = _repeat_blocks(lut, indices.shape)  # (*indices.shape, 2^nbits, vector_size)
    picked = np.take_along_axis(tables, indices.astype(np.int64)[..., None, None], axis=-2)[..., 0, :]
    out = picked.reshape(indices.shape[:-1] + (indices.shape[-1] * vector_size,))
    return np.swapaxes(out, -1, axis) if vector_size > 1 else out


@register("constexpr_lut_to_dense", static=_STATIC_ALL)
def lut_to_dense(ctx: OpContext, indices, lut, shape=None, vector_axis=None) -> mx.array:
    lut = _np(lut)
    if shape is not None:  # iOS16: packed uint8 indices into one flat table
        return _dense(ctx, _lut_dense_ios16(lut, _np(indices), [int(d) for d in _np(shape).reshape(-1)]))
    axis = None if vector_axis is None else as_int(vector_axis)
    return _dense(ctx, lut_to_dense_blocks(_np(indices), lut, axis))


def sparse_to_dense_values(nonzero_data: np.ndarray, mask: np.ndarray) -> np.ndarray:
    dense = np.zeros(mask.shape, dtype=nonzero_data.dtype)
    dense[mask != 0] = nonzero_data
    return dense


@register("constexpr_sparse_to_dense", static=_STATIC_ALL)
def sparse_to_dense(ctx: OpContext, nonzero_data, mask, shape=None) -> mx.array:
    data, mask = _np(nonzero_data), _np(mask)
    if shape is not None:  # iOS16: a packed uint8 bit mask over the flattened output
        dims = [int(d) for d in _np(shape).reshape(-1)]
        bits = unpack_sub_byte(mask.astype(np.uint8), 1, False, int(np.prod(dims))).reshape(dims)
        return _dense(ctx, sparse_to_dense_values(data, bits))
    return _dense(ctx, sparse_to_dense_values(data, mask))


def shift_scale(data: np.ndarray, scale: np.ndarray, offset: np.ndarray | None) -> np.ndarray:
    values = data.astype(np.float32)
    if offset is not None:
        values = values - _repeat_blocks(offset.astype(np.float32), data.shape)
    return (values * _repeat_blocks(scale.astype(np.float32), data.shape)).astype(scale.dtype)


@register("constexpr_blockwise_shift_scale", static=_STATIC_ALL)
def blockwise_shift_scale(ctx: OpContext, data, scale, offset=None) -> mx.array:
    return _dense(ctx, shift_scale(_np(data), _np(scale), None if offset is None else _np(offset)))


@register("constexpr_lut_to_sparse", static=_STATIC_ALL)
def lut_to_sparse(ctx: OpContext, indices_mask, indices_nonzero_data, lut, vector_axis=None):
    mask, lut = _np(indices_mask), _np(lut)
    axis = None if vector_axis is None else as_int(vector_axis)
    dense = lut_to_dense_blocks(sparse_to_dense_values(_np(indices_nonzero_data), mask), lut, axis)
    if lut.shape[-1] > 1:
        mask = np.repeat(mask, lut.shape[-1], axis=axis)
    return mx.array(mask.astype(np.uint8)), mx.array(_as_computable(dense[mask != 0]))


@register("constexpr_sparse_blockwise_shift_scale", static=_STATIC_ALL)
def sparse_blockwise_shift_scale(ctx: OpContext, data_mask, nonzero_data, scale, offset=None):
    mask = _np(data_mask)
    dense = shift_scale(
        sparse_to_dense_values(_np(nonzero_data), mask), _np(scale), None if offset is None else _np(offset)
    )
    return mx.array(mask.astype(np.uint8)), mx.array(_as_computable(dense[mask != 0]))


def _as_computable(values: np.ndarray) -> np.ndarray:
    return values.astype(np.float32) if values.dtype == np.float64 else values
