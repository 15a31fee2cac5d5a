"""Shape and layout ops: reshape, transpose, concat/split/stack, squeeze/expand_dims, tile, slicing,
pad, reverse, shape/fill/range. Shape-like parameters are host values (see registry.py).

slice_by_index follows coremltools' `solve_slice_by_index_slice`: Python slice semantics, masks
replace begin/end, a squeezed axis takes the single element at `begin`.
"""

from __future__ import annotations

import math

import mlx.core as mx
import numpy as np

from .registry import OpContext, as_bool, as_bools, as_int, as_ints, as_str, norm_axis, register


@register("reshape", static=("shape",))
def reshape(ctx: OpContext, x: mx.array, shape) -> mx.array:
    dims = as_ints(shape)
    if ctx.opset >= 7:
        dims = _zeros_from_right(dims, x.shape)
    elif len(dims) == x.ndim:  # before iOS17, 0 copies the input's dimension when ranks agree
        dims = [x.shape[i] if d == 0 else d for i, d in enumerate(dims)]
    return x.reshape(dims)


def _zeros_from_right(dims: list[int], shape: tuple[int, ...]) -> list[int]:
    """iOS17's reshape: a 0 copies the input dimension at the same place counted from the right,
    or is 1 where the input has no dimension there."""
    offset = len(shape) - len(dims)
    return [d if d != 0 else (shape[i + offset] if i + offset >= 0 else 1) for i, d in enumerate(dims)]


@register(
    "reshape_like", static=("begins", "ends", "end_masks"), variadic=("ref_tensors", "begins", "ends", "end_masks")
)
def reshape_like(ctx: OpContext, x: mx.array, ref_tensors, begins, ends, end_masks) -> mx.array:
    dims: list[int] = []
    for ref, begin, end, end_mask in zip(ref_tensors, begins, ends, end_masks):
        stop = ref.ndim if as_bool(end_mask) else as_int(end)
        dims.extend(ref.shape[as_int(begin) : stop])
    return x.reshape(dims)


@register("transpose", static=("perm",))
def transpose(ctx: OpContext, x: mx.array, perm) -> mx.array:
    return mx.transpose(x, as_ints(perm))


@register("concat", static=("axis", "interleave"), variadic=("values",))
def concat(ctx: OpContext, values: list[mx.array], axis, interleave=False) -> mx.array:
    axis = norm_axis(as_int(axis), values[0].ndim)
    if as_bool(interleave):
        stacked = mx.stack(values, axis=axis + 1)  # (..., n, k, ...)
        shape = list(values[0].shape)
        shape[axis] *= len(values)
        return stacked.reshape(shape)
    return mx.concatenate(values, axis=axis)


@register("split", static=("num_splits", "split_sizes", "axis"))
def split(ctx: OpContext, x: mx.array, axis, num_splits=None, split_sizes=None) -> list[mx.array]:
    axis = norm_axis(as_int(axis), x.ndim)
    if split_sizes is not None:
        sizes = as_ints(split_sizes)
    else:
        count = as_int(num_splits) if num_splits is not None else len(ctx.output_types)
        sizes = [math.ceil(x.shape[axis] / count)] * count
        sizes[-1] = x.shape[axis] - sum(sizes[:-1])
    boundaries = np.cumsum(sizes)[:-1].tolist()
    return list(mx.split(x, boundaries, axis=axis))


@register("stack", static=("axis",), variadic=("values",))
def stack(ctx: OpContext, values: list[mx.array], axis) -> mx.array:
    return mx.stack(values, axis=as_int(axis))


@register("squeeze", static=("axes",))
def squeeze(ctx: OpContext, x: mx.array, axes=None) -> mx.array:
    if axes is None:
        return x.reshape([d for d in x.shape if d != 1])
    return mx.squeeze(x, axis=tuple(norm_axis(a, x.ndim) for a in as_ints(axes)))


@register("expand_dims", static=("axes",))
def expand_dims(ctx: OpContext, x: mx.array, axes) -> mx.array:
    out_rank = x.ndim + len(as_ints(axes))
    positions = sorted(norm_axis(a, out_rank) for a in as_ints(axes))
    shape = list(x.shape)
    for p in positions:
        shape.insert(p, 1)
    return x.reshape(shape)


@register("flatten2d", static=("axis",))
def flatten2d(ctx: OpContext, x: mx.array, axis=1) -> mx.array:
    axis = norm_axis(as_int(axis), x.ndim)
    return x.reshape(math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))


@register("tile", static=("reps",))
def tile(ctx: OpContext, x: mx.array, reps) -> mx.array:
    return mx.tile(x, as_ints(reps))


def index_slices(shape, begin, end, stride, begin_mask, end_mask, squeeze_mask) -> tuple[tuple, list[int]]:
    """Python slices for slice_by_index, and the axes to squeeze afterwards."""
    rank = len(shape)
    begin, end = as_ints(begin), as_ints(end)
    stride = as_ints(stride) if stride is not None else [1] * rank
    begin_mask = as_bools(begin_mask) if begin_mask is not None else [False] * rank
    end_mask = as_bools(end_mask) if end_mask is not None else [False] * rank
    squeeze_mask = as_bools(squeeze_mask) if squeeze_mask is not None else [False] * rank
    slices, squeezed = [], []
    for i in range(rank):
        start = None if begin_mask[i] else begin[i]
        if squeeze_mask[i]:
            index = norm_axis(start or 0, shape[i])
            slices.append(slice(index, index + 1, 1))
            squeezed.append(i)
            continue
        stop = None if end_mask[i] else end[i]
        slices.append(slice(start, stop, stride[i]))
    return tuple(slices), squeezed


@register("slice_by_index", static=("begin", "end", "stride", "begin_mask", "end_mask", "squeeze_mask"))
def slice_by_index(
    ctx: OpContext, x: mx.array, begin, end, stride=None, begin_mask=None, end_mask=None, squeeze_mask=None
) -> mx.array:
    slices, squeezed = index_slices(x.shape, begin, end, stride, begin_mask, end_mask, squeeze_mask)
    y = x[slices]
    return mx.squeeze(y, axis=tuple(squeezed)) if squeezed else y


@register("slice_update", static=("begin", "end", "stride", "begin_mask", "end_mask", "squeeze_mask"))
def slice_update(
    ctx: OpContext,
    x: mx.array,
    update: mx.array,
    begin,
    end,
    stride=None,
    begin_mask=None,
    end_mask=None,
    squeeze_mask=None,
) -> mx.array:
    slices, squeezed = index_slices(x.shape, begin, end, stride, begin_mask, end_mask, squeeze_mask)
    target_shape = x[slices].shape
    y = mx.array(x)  # a new array: slice assignment must not touch the input value
    y[slices] = update.astype(x.dtype).reshape(target_shape)
    return y


@register("slice_by_size", static=("begin", "size"))
def slice_by_size(ctx: OpContext, x: mx.array, begin, size) -> mx.array:
    starts = [norm_axis(b, d) for b, d in zip(as_ints(begin), x.shape)]
    sizes = as_ints(size)
    slices = tuple(slice(s, d if n == -1 else s + n) for s, n, d in zip(starts, sizes, x.shape))
    return x[slices]


@register("pad", static=("pad", "mode", "constant_val"))
def pad(ctx: OpContext, x: mx.array, pad, mode="constant", constant_val=None) -> mx.array:
    amounts = as_ints(pad)
    n = len(amounts) // 2
    widths = [(0, 0)] * (x.ndim - n) + [(amounts[2 * i], amounts[2 * i + 1]) for i in range(n)]
    mode = as_str(mode)
    if mode == "constant":
        value = 0.0 if constant_val is None else np.asarray(constant_val).reshape(-1)[0].item()
        return mx.pad(x, widths, constant_values=value)
    if mode == "replicate":
        return mx.pad(x, widths, mode="edge")
    if mode == "reflect":
        return _reflect_pad(x, widths)
    raise ValueError(f"pad mode '{mode}' is not one of constant, reflect, replicate")


def _reflect_pad(x: mx.array, widths: list[tuple[int, int]]) -> mx.array:
    """Mirror without repeating the edge element (numpy's 'reflect')."""
    for axis, (before, after) in enumerate(widths):
        if before == 0 and after == 0:
            continue
        size = x.shape[axis]
        index = np.abs(np.arange(-before, size + after))
        index = np.where(index >= size, 2 * (size - 1) - index, index)
        x = mx.take(x, mx.array(index.astype(np.int32)), axis=axis)
    return x


@register("reverse", static=("axes",))
def reverse(ctx: OpContext, x: mx.array, axes=None) -> mx.array:
    axes = range(x.ndim) if axes is None else [norm_axis(a, x.ndim) for a in as_ints(axes)]
    slices = [slice(None)] * x.ndim
    for a in axes:
        slices[a] = slice(None, None, -1)
    return x[tuple(slices)]


@register("reverse_sequence", static=("seq_axis", "batch_axis"))
def reverse_sequence(ctx: OpContext, x: mx.array, lengths: mx.array, seq_axis=0, batch_axis=0) -> mx.array:
    seq_axis, batch_axis = norm_axis(as_int(seq_axis), x.ndim), norm_axis(as_int(batch_axis), x.ndim)
    positions = mx.arange(x.shape[seq_axis]).reshape([x.shape[seq_axis] if i == seq_axis else 1 for i in range(x.ndim)])
    lengths = lengths.astype(mx.int32).reshape([x.shape[batch_axis] if i == batch_axis else 1 for i in range(x.ndim)])
    source = mx.where(positions < lengths, lengths - 1 - positions, positions)
    return mx.take_along_axis(x, mx.broadcast_to(source, x.shape), axis=seq_axis)


@register("identity")
def identity(ctx: OpContext, x):
    return x


@register("shape")
def shape(ctx: OpContext, x: mx.array) -> mx.array:
    return mx.array(list(x.shape), dtype=mx.int32)  # known while tracing: a concrete array


@register("fill", static=("shape",))
def fill(ctx: OpContext, shape, value=None) -> mx.array:
    value = mx.array(0.0) if value is None else value
    return mx.full(as_ints(shape), value)


@register("fill_like")
def fill_like(ctx: OpContext, ref_tensor: mx.array, value=None) -> mx.array:
    value = mx.array(0.0) if value is None else value
    return mx.full(ref_tensor.shape, value)


@register("range_1d", static=("start", "end", "step"))
def range_1d(ctx: OpContext, end, start, step) -> mx.array:
    values = np.arange(np.asarray(start).item(), np.asarray(end).item(), np.asarray(step).item())
    return mx.array(values.astype(np.asarray(start).dtype))


@register("band_part", static=("lower", "upper"))
def band_part(ctx: OpContext, x: mx.array, lower=-1, upper=-1) -> mx.array:
    lower, upper = as_int(lower), as_int(upper)
    rows, cols = x.shape[-2], x.shape[-1]
    i = mx.arange(rows).reshape(rows, 1)
    j = mx.arange(cols).reshape(1, cols)
    keep = mx.ones((rows, cols), dtype=mx.bool_)
    if lower >= 0:
        keep = mx.logical_and(keep, i - j <= lower)
    if upper >= 0:
        keep = mx.logical_and(keep, j - i <= upper)
    return mx.where(keep, x, mx.zeros_like(x))
