"""Indexing ops: gather (with batch_dims), gather_along_axis, gather_nd, the scatter family, one_hot.

Gather indices may be negative (counted from the end). Scatter indices follow the opset: before
iOS17 negative ones count from the end; from iOS17 on only [0, D) is in bounds. There, with
`validate_indices` an out-of-bound index fails the prediction (checked on the host, so such a
program runs uncompiled), and without it (behaviour undefined in Core ML) its update is dropped:
it is written to a scratch slot past the end that is cut off again, never to another element."""

from __future__ import annotations

import math

import mlx.core as mx
import numpy as np

from .registry import OpContext, as_bool, as_int, as_str, norm_axis, register, to_host

_IOS17 = 7  # the opset number of CoreML7 (iOS17)


def _wrap(indices: mx.array, size: int) -> mx.array:
    indices = indices.astype(mx.int32)
    return mx.where(indices < 0, indices + size, indices)


@register("gather", static=("axis", "batch_dims", "validate_indices"))
def gather(ctx: OpContext, x: mx.array, indices: mx.array, axis=0, batch_dims=0, validate_indices=False) -> mx.array:
    axis, batch = norm_axis(as_int(axis), x.ndim), as_int(batch_dims)
    indices = _wrap(indices, x.shape[axis])
    if batch == 0:
        return mx.take(x, indices, axis=axis)
    batch_shape = x.shape[:batch]
    n_batch = math.prod(batch_shape)
    moved = mx.moveaxis(x, axis, batch)  # (B..., N, pre..., post...)
    rest = moved.shape[batch + 1 :]
    flat = moved.reshape((n_batch * x.shape[axis],) + rest)  # (B*N, rest...)
    index_shape = indices.shape[batch:]
    offsets = (mx.arange(n_batch) * x.shape[axis]).reshape((n_batch,) + (1,) * len(index_shape))
    picked = mx.take(flat, (indices.reshape((n_batch,) + index_shape) + offsets).reshape(-1), axis=0)
    picked = picked.reshape(batch_shape + index_shape + rest)  # (B..., I..., pre..., post...)
    n_pre, n_index = axis - batch, len(index_shape)
    order = list(range(batch))
    order += list(range(batch + n_index, batch + n_index + n_pre))  # pre dims come first
    order += list(range(batch, batch + n_index))
    order += list(range(batch + n_index + n_pre, picked.ndim))
    return mx.transpose(picked, order)


@register("gather_along_axis", static=("axis", "validate_indices"))
def gather_along_axis(ctx: OpContext, x: mx.array, indices: mx.array, axis=0, validate_indices=False) -> mx.array:
    axis = norm_axis(as_int(axis), x.ndim)
    return mx.take_along_axis(x, _wrap(indices, x.shape[axis]), axis=axis)


def _nd_index(x: mx.array, indices: mx.array, batch: int) -> tuple[mx.array, ...]:
    """Index arrays addressing x for gather_nd/scatter_nd: batch grids, then the K given coordinates."""
    depth = indices.shape[-1]
    batch_shape = indices.shape[:batch]
    grids = []
    for b in range(batch):
        shape = [1] * (indices.ndim - 1)
        shape[b] = batch_shape[b]
        grids.append(mx.arange(batch_shape[b]).reshape(shape))
    coords = [_wrap(indices[..., k], x.shape[batch + k]) for k in range(depth)]
    return tuple(grids + coords)


@register("gather_nd", static=("batch_dims", "validate_indices"))
def gather_nd(ctx: OpContext, x: mx.array, indices: mx.array, batch_dims=0, validate_indices=False) -> mx.array:
    index = _nd_index(x, indices, as_int(batch_dims))
    return x[index]


def _scatter_into(data: mx.array, index: tuple, updates: mx.array, mode: str) -> mx.array:
    updates = updates.astype(data.dtype)
    if mode == "update":
        out = mx.array(data)  # slice assignment must not touch the input value
        out[index] = updates
        return out
    target = data.at[index]
    actions = {
        "add": target.add,
        "sub": target.subtract,
        "mul": target.multiply,
        "div": target.divide,
        "max": target.maximum,
        "min": target.minimum,
    }
    if mode not in actions:
        raise ValueError(f"scatter mode '{mode}' is not supported")
    return actions[mode](updates)


def _checked(ctx: OpContext, indices: mx.array, sizes: list[int], validate) -> mx.array:
    """Indices as int32, negative ones wrapped before iOS17; with `validate`, any index out of
    bounds raises IndexError (indices (..., K) against `sizes` (K,), or (...) against one size)."""
    indices = indices.astype(mx.int32)
    low = 0 if ctx.opset >= _IOS17 else -np.asarray(sizes)
    if validate is not None and as_bool(validate):
        host = np.asarray(to_host(indices)).reshape(-1, len(sizes))
        if ((host < low) | (host >= np.asarray(sizes))).any():
            raise IndexError(f"scatter indices out of bounds for dimensions {sizes}")
    if ctx.opset >= _IOS17:
        return indices
    return indices + mx.where(indices < 0, mx.array(np.asarray(sizes, dtype=np.int32)), 0)


def _in_bounds(indices: mx.array, sizes: list[int]) -> mx.array:
    """True where every coordinate of (..., K) indices lies in [0, size)."""
    limits = mx.array(np.asarray(sizes, dtype=np.int32))
    return mx.all((indices >= 0) & (indices < limits), axis=-1)


def _with_scratch(data: mx.array, axis: int) -> mx.array:
    """data with one more (zero) slice at the end of `axis`: where dropped updates go."""
    pad = [(0, 0)] * data.ndim
    pad[axis] = (0, 1)
    return mx.pad(data, pad)


def _drop_scratch(data: mx.array, axis: int) -> mx.array:
    return mx.split(data, [data.shape[axis] - 1], axis=axis)[0]


@register("scatter", static=("axis", "mode", "validate_indices"))
def scatter(
    ctx: OpContext, data: mx.array, indices: mx.array, updates: mx.array, axis=0, mode="add", validate_indices=None
) -> mx.array:
    axis = norm_axis(as_int(axis), data.ndim)
    size = data.shape[axis]
    index = _checked(ctx, indices, [size], validate_indices)
    moved = mx.moveaxis(data, axis, 0)  # (D, ...)
    if ctx.opset >= _IOS17:
        moved = _with_scratch(moved, 0)
        index = mx.where(_in_bounds(index[..., None], [size]), index, size)
    result = _scatter_into(moved, (index,), mx.moveaxis(updates, axis, 0), as_str(mode))
    if ctx.opset >= _IOS17:
        result = _drop_scratch(result, 0)
    return mx.moveaxis(result, 0, axis)


@register("scatter_along_axis", static=("axis", "mode", "validate_indices"))
def scatter_along_axis(
    ctx: OpContext, data: mx.array, indices: mx.array, updates: mx.array, axis=0, mode="add", validate_indices=None
) -> mx.array:
    axis = norm_axis(as_int(axis), data.ndim)
    size = data.shape[axis]
    along = _checked(ctx, indices, [size], validate_indices)
    if ctx.opset >= _IOS17:
        data = _with_scratch(data, axis)
        along = mx.where(_in_bounds(along[..., None], [size]), along, size)
    index = []
    for d in range(data.ndim):
        if d == axis:
            index.append(along)
        else:
            shape = [1] * indices.ndim
            shape[d] = indices.shape[d]
            index.append(mx.arange(indices.shape[d]).reshape(shape))
    result = _scatter_into(data, tuple(index), updates, as_str(mode))
    return _drop_scratch(result, axis) if ctx.opset >= _IOS17 else result


@register("scatter_nd", static=("mode", "validate_indices"))
def scatter_nd(
    ctx: OpContext, data: mx.array, indices: mx.array, updates: mx.array, mode="add", validate_indices=None
) -> mx.array:
    sizes = list(data.shape[: indices.shape[-1]])
    indices = _checked(ctx, indices, sizes, validate_indices)
    if ctx.opset < _IOS17:
        return _scatter_into(data, tuple(indices[..., k] for k in range(len(sizes))), updates, as_str(mode))
    inside = _in_bounds(indices, sizes)
    coords = [mx.where(inside, indices[..., 0], sizes[0])]  # a dropped update goes to the scratch row
    coords += [mx.where(inside, indices[..., k], 0) for k in range(1, len(sizes))]
    result = _scatter_into(_with_scratch(data, 0), tuple(coords), updates, as_str(mode))
    return _drop_scratch(result, 0)


@register("one_hot", static=("one_hot_vector_size", "axis", "on_value", "off_value"))
def one_hot(ctx: OpContext, indices: mx.array, one_hot_vector_size, axis=-1, on_value=1, off_value=0) -> mx.array:
    depth = as_int(one_hot_vector_size)
    axis = norm_axis(as_int(axis), indices.ndim + 1)
    classes = mx.arange(depth).reshape([depth if i == axis else 1 for i in range(indices.ndim + 1)])
    hot = mx.expand_dims(indices.astype(mx.int32), axis) == classes
    on, off = mx.array(np.asarray(on_value).reshape(())), mx.array(np.asarray(off_value).reshape(()))
    return mx.where(hot, on, off)
