"""Indexing ops: gather (with batch_dims), gather_along_axis, gather_nd, the scatter family, one_hot.
Negative indices count from the end (iOS17 semantics; earlier opsets never produce them)."""

from __future__ import annotations

import math

import mlx.core as mx
import numpy as np

from .registry import OpContext, as_int, as_str, norm_axis, register


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
        "add": target.add, "sub": target.subtract, "mul": target.multiply,
        "div": target.divide, "max": target.maximum, "min": target.minimum,
    }
    if mode not in actions:
        raise ValueError(f"scatter mode '{mode}' is not supported")
    return actions[mode](updates)


@register("scatter", static=("axis", "mode", "validate_indices"))
def scatter(ctx: OpContext, data: mx.array, indices: mx.array, updates: mx.array, axis=0, mode="add",
            validate_indices=False) -> mx.array:
    axis = norm_axis(as_int(axis), data.ndim)
    moved = mx.moveaxis(data, axis, 0)
    result = _scatter_into(moved, (_wrap(indices, data.shape[axis]),), mx.moveaxis(updates, axis, 0), as_str(mode))
    return mx.moveaxis(result, 0, axis)


@register("scatter_along_axis", static=("axis", "mode", "validate_indices"))
def scatter_along_axis(ctx: OpContext, data: mx.array, indices: mx.array, updates: mx.array, axis=0, mode="add",
                       validate_indices=False) -> mx.array:
    axis = norm_axis(as_int(axis), data.ndim)
    index = []
    for d in range(data.ndim):
        if d == axis:
            index.append(_wrap(indices, data.shape[axis]))
        else:
            shape = [1] * indices.ndim
            shape[d] = indices.shape[d]
            index.append(mx.arange(indices.shape[d]).reshape(shape))
    return _scatter_into(data, tuple(index), updates, as_str(mode))


@register("scatter_nd", static=("mode", "validate_indices"))
def scatter_nd(ctx: OpContext, data: mx.array, indices: mx.array, updates: mx.array, mode="add",
               validate_indices=False) -> mx.array:
    return _scatter_into(data, _nd_index(data, indices, 0), updates, as_str(mode))


@register("one_hot", static=("one_hot_vector_size", "axis", "on_value", "off_value"))
def one_hot(ctx: OpContext, indices: mx.array, one_hot_vector_size, axis=-1, on_value=1, off_value=0) -> mx.array:
    depth = as_int(one_hot_vector_size)
    axis = norm_axis(as_int(axis), indices.ndim + 1)
    classes = mx.arange(depth).reshape([depth if i == axis else 1 for i in range(indices.ndim + 1)])
    hot = mx.expand_dims(indices.astype(mx.int32), axis) == classes
    on, off = mx.array(np.asarray(on_value).reshape(())), mx.array(np.asarray(off_value).reshape(()))
    return mx.where(hot, on, off)
