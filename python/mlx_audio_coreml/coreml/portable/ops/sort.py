"""Ordering ops: argsort, topk, and non_zero (whose output size depends on the data, so it needs
the host value and runs eagerly)."""

from __future__ import annotations

import mlx.core as mx
import numpy as np

from ..values import CAST_DTYPES, mx_dtype
from .registry import OpContext, as_bool, as_int, as_str, norm_axis, register, to_host


def _order(x: mx.array, axis: int, ascending: bool) -> mx.array:
    """Stable sort order along axis; descending keeps equal elements in their original order."""
    if ascending:
        return mx.argsort(x, axis=axis)
    n = x.shape[axis]
    flipped = mx.argsort(_flip(x, axis), axis=axis)  # ascending on the reversed axis ...
    return _flip(n - 1 - flipped, axis)  # ... read backwards: descending, ties first-come


def _flip(x: mx.array, axis: int) -> mx.array:
    index = [slice(None)] * x.ndim
    index[axis] = slice(None, None, -1)
    return x[tuple(index)]


@register("argsort", static=("axis", "ascending"))
def argsort(ctx: OpContext, x: mx.array, axis=-1, ascending=False) -> mx.array:
    return _order(x, norm_axis(as_int(axis), x.ndim), as_bool(ascending)).astype(mx.int32)


@register("topk", static=("k", "axis", "ascending", "sort", "return_indices", "output_indices_dtype"))
def topk(
    ctx: OpContext,
    x: mx.array,
    k=1,
    axis=-1,
    ascending=False,
    sort=True,
    return_indices=True,
    output_indices_dtype="int32",
):
    axis = norm_axis(as_int(axis), x.ndim)
    k = as_int(k)
    k = x.shape[axis] if k == -1 else k
    order = _order(x, axis, as_bool(ascending))
    index = [slice(None)] * x.ndim
    index[axis] = slice(0, k)
    indices = order[tuple(index)]
    values = mx.take_along_axis(x, indices, axis=axis)
    if not as_bool(return_indices):
        return values
    return values, indices.astype(mx_dtype(CAST_DTYPES[as_str(output_indices_dtype)]))


@register("non_zero")
def non_zero(ctx: OpContext, x: mx.array) -> mx.array:
    found = np.argwhere(np.asarray(to_host(x)))  # (N, rank): the count is only known from the data
    return mx.array(found.astype(np.int32))
