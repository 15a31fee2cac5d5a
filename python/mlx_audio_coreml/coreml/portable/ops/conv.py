"""conv and conv_transpose, 1-3 spatial dims, channels-first as MIL defines them.

MIL: x (N, C_in, *D), conv weight (C_out, C_in/groups, *K), conv_transpose weight
(C_in, C_out/groups, *K). MLX computes channels-last: x (N, *D, C), weight (C_out, *K, C_in/groups),
so inputs are moved and weights re-laid out once (memoized when the weight is a constant).
Padding follows coremltools' `aggregated_pad`: for "same" the total is
max(0, s*ceil(i/s) - i + k_eff - s), the odd element at the end ("same") or the start ("same_lower").
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import mlx.core as mx

from . import host_conv
from .registry import OpContext, as_int, as_ints, as_str, compute_dtype, register


def same_padding(
    pad_type: str, spatial: Sequence[int], kernel: Sequence[int], strides: Sequence[int], dilations: Sequence[int]
) -> list[tuple[int, int]]:
    """(begin, end) padding per spatial dim for pad_type same / same_lower."""
    pads = []
    for size, k, s, d in zip(spatial, kernel, strides, dilations):
        effective = (k - 1) * d + 1
        total = max(0, s * math.ceil(size / s) - size + effective - s)
        small, large = total // 2, total - total // 2
        pads.append((large, small) if pad_type == "same_lower" else (small, large))
    return pads


def resolve_padding(
    pad_type: str,
    pad: Sequence[int] | None,
    spatial: Sequence[int],
    kernel: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
) -> list[tuple[int, int]]:
    if pad_type in ("same", "same_lower"):
        return same_padding(pad_type, spatial, kernel, strides, dilations)
    if pad_type == "custom" and pad is not None:
        return [(pad[2 * i], pad[2 * i + 1]) for i in range(len(spatial))]
    return [(0, 0)] * len(spatial)


def channels_last(x: mx.array) -> mx.array:
    return mx.moveaxis(x, 1, -1)  # (N, C, *D) -> (N, *D, C)


def channels_first(x: mx.array) -> mx.array:
    return mx.moveaxis(x, -1, 1)  # (N, *D, C) -> (N, C, *D)


def _spatial_params(x: mx.array, strides, dilations) -> tuple[int, list[int], list[int]]:
    n = x.ndim - 2
    return (
        n,
        as_ints(strides) if strides is not None else [1] * n,
        as_ints(dilations) if dilations is not None else [1] * n,
    )


@register("conv", static=("strides", "pad_type", "pad", "dilations", "groups"))
def conv(
    ctx: OpContext,
    x: mx.array,
    weight: mx.array,
    bias: mx.array | None = None,
    strides=None,
    pad_type="valid",
    pad=None,
    dilations=None,
    groups=1,
) -> mx.array:
    kernel = weight.shape[2:]
    pointwise = all(k == 1 for k in kernel) and as_int(groups) == 1
    if pointwise and all(s == 1 for s in _ints_or_ones(strides, len(kernel))) and not _padded(pad_type, pad):
        return _pointwise(ctx, x, weight, bias)
    y = conv_channels_last(ctx, channels_last(x), weight, bias, strides, pad_type, pad, dilations, groups)
    return channels_first(y)


def conv_channels_last(
    ctx: OpContext,
    x: mx.array,
    weight: mx.array,
    bias: mx.array | None = None,
    strides=None,
    pad_type="valid",
    pad=None,
    dilations=None,
    groups=1,
    residual: mx.array | None = None,
) -> mx.array:
    """conv on channels-last x (N, *D, C_in) -> channels-last (N, *D', C_out); MIL's weight layout.
    With `residual` (a value of the output's shape or one that broadcasts to it): conv + residual."""
    n = x.ndim - 2
    strides, dilations = _ints_or_ones(strides, n), _ints_or_ones(dilations, n)
    kernel = list(weight.shape[2:])
    pads = resolve_padding(
        as_str(pad_type), as_ints(pad) if pad is not None else None, x.shape[1:-1], kernel, strides, dilations
    )
    # spatial axes of size 1 that the kernel does not move along (the unit axis of (N, C, 1, S)
    # programs) are dropped: a 1-D convolution is cheaper than the same work as a 2-D one
    unit = [x.shape[1 + i] == 1 and kernel[i] == 1 and strides[i] == 1 and pads[i] == (0, 0) for i in range(n)]
    keep = [i for i in range(n) if not unit[i]] or [n - 1]
    x_kept = x.reshape((x.shape[0],) + tuple(x.shape[1 + i] for i in keep) + (x.shape[-1],))  # (N, *D_kept, C)
    added = residual is None
    if len(keep) == 1 and host_conv.applies(ctx, x, bias, as_int(groups)):
        i = keep[0]
        y = host_conv.conv(ctx, x_kept, weight, bias, strides[i], dilations[i], pads[i], residual)
        added = added or host_conv.absorbs(residual, y.shape)
    else:
        y = _mlx_conv(ctx, x_kept, weight, bias, keep, kernel, strides, pads, dilations, as_int(groups))
    spatial = [y.shape[1 + keep.index(i)] if i in keep else 1 for i in range(n)]
    y = y.reshape((y.shape[0],) + tuple(spatial) + (y.shape[-1],)).astype(x.dtype)  # (N, *D', C_out)
    return y if added or residual is None else y + residual


def _mlx_conv(
    ctx: OpContext,
    x_kept: mx.array,
    weight: mx.array,
    bias: mx.array | None,
    keep: list[int],
    kernel: list[int],
    strides: list[int],
    pads: list[tuple[int, int]],
    dilations: list[int],
    groups: int,
) -> mx.array:
    """The convolution over the kept spatial axes by MLX: (N, *D_kept, C_in) -> (N, *D_kept', C_out)."""
    dtype = compute_dtype(x_kept.dtype)
    w = ctx.derived(
        "weight", "weight", lambda: mx.contiguous(mx.moveaxis(weight, 1, -1).astype(dtype)), (weight, dtype)
    )  # (C_out, *K, C_in/g)
    w_kept = w.reshape((w.shape[0],) + tuple(kernel[i] for i in keep) + (w.shape[-1],))
    y = grouped_conv(
        x_kept.astype(dtype),
        w_kept,
        groups,
        stride=[strides[i] for i in keep],
        padding=([pads[i][0] for i in keep], [pads[i][1] for i in keep]),
        kernel_dilation=[dilations[i] for i in keep],
    )
    return y + bias.astype(y.dtype) if bias is not None else y


def _ints_or_ones(values, n: int) -> list[int]:
    return as_ints(values) if values is not None else [1] * n


def _padded(pad_type, pad) -> bool:
    """Whether a stride-1, kernel-1 conv pads (only explicit custom padding can)."""
    return as_str(pad_type) == "custom" and pad is not None and any(as_ints(pad))


def grouped_conv(x: mx.array, w: mx.array, groups: int, **kwargs) -> mx.array:
    """mx.conv_general, with groups done one by one where MLX lacks them (3-D convolutions)."""
    if groups == 1 or x.ndim <= 4:
        return mx.conv_general(x, w, groups=groups, **kwargs)
    xs = mx.split(x, groups, axis=-1)  # channels-last: (N, *D, C/g) each
    ws = mx.split(w, groups, axis=0)  # (C_out/g, *K, C_in/g) each
    return mx.concatenate([mx.conv_general(a, b, **kwargs) for a, b in zip(xs, ws)], axis=-1)


def _pointwise(ctx: OpContext, x: mx.array, weight: mx.array, bias: mx.array | None) -> mx.array:
    """A 1x1 convolution (how Neural-Engine-minded converters spell linear layers) as one matrix
    product over the channel axis: no channels-last round trip."""
    if host_conv.applies(ctx, x, bias, 1):
        return host_conv.pointwise(ctx, x, weight, bias).astype(x.dtype)
    dtype = compute_dtype(x.dtype)
    w = ctx.derived(
        "pointwise", "weight", lambda: weight.reshape(weight.shape[0], -1).astype(dtype), (weight, dtype)
    )  # (O, C)
    y = mx.matmul(w, x.astype(dtype).reshape(x.shape[0], x.shape[1], -1))  # (N, O, L)
    if bias is not None:
        y = y + bias.astype(y.dtype).reshape(-1, 1)
    return y.reshape((x.shape[0], w.shape[0]) + tuple(x.shape[2:])).astype(x.dtype)


def _transpose_weight(weight: mx.array, groups: int) -> mx.array:
    """(C_in, C_out/g, *K) -> (C_out, *K, C_in/g), grouped as conv_general expects."""
    c_in, c_out_g, kernel = weight.shape[0], weight.shape[1], weight.shape[2:]
    w = weight.reshape((groups, c_in // groups, c_out_g) + tuple(kernel))  # (g, C_in/g, C_out/g, *K)
    w = mx.moveaxis(w, 1, -1)  # (g, C_out/g, *K, C_in/g)
    return w.reshape((groups * c_out_g,) + tuple(kernel) + (c_in // groups,))


@register("conv_transpose", static=("pad", "output_shape", "pad_type", "strides", "dilations", "groups"))
def conv_transpose(
    ctx: OpContext,
    x: mx.array,
    weight: mx.array,
    bias: mx.array | None = None,
    pad=None,
    output_shape=None,
    pad_type="valid",
    strides=None,
    dilations=None,
    groups=1,
) -> mx.array:
    n, strides, dilations = _spatial_params(x, strides, dilations)
    groups = as_int(groups)
    kernel = list(weight.shape[2:])
    full = [(i - 1) * s + (k - 1) * d + 1 for i, s, k, d in zip(x.shape[2:], strides, kernel, dilations)]
    crops = _transpose_crops(as_str(pad_type), pad, output_shape, x.shape[2:], strides, full)
    if n == 1 and groups == 1 and dilations == [1] and min(crops[0]) >= 0 and product_route():
        y = _transpose_1d(ctx, channels_last(x), weight, bias, strides[0], crops[0])
        return channels_first(y).astype(x.dtype)
    depthwise = groups == x.shape[1] == weight.shape[0] and weight.shape[1] == 1
    # host_conv.applies is asked as for one group: the depthwise kernel below handles the groups itself
    if n == 1 and depthwise and dilations == [1] and min(crops[0]) >= 0 and host_conv.applies(ctx, x, bias, 1):
        y = host_conv.depthwise_transpose(ctx, channels_last(x), weight, bias, strides[0], crops[0])
        return channels_first(y).astype(x.dtype)  # MLX's grouped transposed conv is a naive loop on the CPU
    lo, hi, trims = [], [], []
    for k, d, (begin, end) in zip(kernel, dilations, crops):
        edge = d * (k - 1)
        lo.append(max(0, edge - begin))
        hi.append(max(0, edge - end))
        trims.append((max(0, begin - edge), max(0, end - edge)))
    dtype = compute_dtype(x.dtype)
    w = ctx.derived(
        "weight",
        "weight",
        lambda: mx.contiguous(_transpose_weight(weight, groups).astype(dtype)),
        (weight, groups, dtype),
    )
    y = grouped_conv(
        channels_last(x.astype(dtype)),
        w,
        groups,
        stride=1,
        padding=(lo, hi),
        kernel_dilation=dilations,
        input_dilation=strides,
        flip=True,
    )
    if any(t != (0, 0) for t in trims):
        y = y[(slice(None),) + tuple(slice(b, y.shape[1 + i] - e) for i, (b, e) in enumerate(trims))]
    if bias is not None:
        y = y + bias.astype(y.dtype)
    return channels_first(y).astype(x.dtype)


def product_route() -> bool:
    """True on the CPU, where a 1-D transposed conv runs as one product and an overlap-add (below). On a
    GPU MLX's own route (an input-dilated convolution) runs instead, as the MLX Kokoro decoder does there
    (kokoro/model/conv.py): it makes no (length, kernel, channels) intermediate."""
    return mx.default_device() == mx.cpu


def _transpose_1d(
    ctx: OpContext, x: mx.array, weight: mx.array, bias: mx.array | None, stride: int, crop: tuple[int, int]
) -> mx.array:
    """A 1-D transposed conv (no groups, dilation 1) on channels-last x (N, L, C_in) as one product and
    an overlap-add (host kernels on the CPU): MLX's own route, an input-dilated convolution, is a
    naive loop on the CPU."""
    if host_conv.applies(ctx, x, bias, 1):
        return host_conv.conv_transpose(ctx, x, weight, bias, stride, crop)
    dtype = compute_dtype(x.dtype)
    c_in, c_out, kernel = weight.shape
    pieces = -(-kernel // stride)
    # (C_in, pieces * stride * C_out): column j * C_out + o is tap j of output o; taps past k are zero
    w = ctx.derived(
        "transpose_1d",
        "weight",
        lambda: mx.pad(
            mx.moveaxis(weight, 1, 2).astype(dtype), [(0, 0), (0, pieces * stride - kernel), (0, 0)]
        ).reshape(c_in, -1),
        (weight, stride, dtype),
    )
    n, length = x.shape[0], x.shape[1]
    spread = mx.matmul(x.astype(dtype), w).reshape(n, length, pieces, stride * c_out)
    full = None
    for piece in range(pieces):  # piece c of frame t lands at frame t + c (in units of `stride` samples)
        shifted = mx.pad(spread[:, :, piece], [(0, 0), (piece, pieces - 1 - piece), (0, 0)])
        full = shifted if full is None else full + shifted
    assert full is not None
    full = full.reshape(n, -1, c_out)[:, : (length - 1) * stride + kernel]
    y = full[:, crop[0] : full.shape[1] - crop[1]]
    return y + bias.astype(y.dtype) if bias is not None else y


def _transpose_crops(pad_type, pad, output_shape, spatial, strides, full) -> list[tuple[int, int]]:
    """How much of the full transposed output to drop at each end (negative: zeros to add).
    Custom padding drops pad[2i] at the start; an output_shape then fixes the end."""
    n = len(spatial)
    if output_shape is not None:
        wanted = as_ints(output_shape)[2:]
    elif pad_type == "same":
        wanted = [i * s for i, s in zip(spatial, strides)]
    else:
        wanted = None
    pads = as_ints(pad) if pad_type == "custom" and pad is not None else [0] * (2 * n)
    crops = []
    for i, size in enumerate(full):
        if pad_type == "same" and wanted is not None:  # "same" always sets wanted
            total = size - wanted[i]
            crops.append((total // 2, total - total // 2))
        elif wanted is not None:
            crops.append((pads[2 * i], size - pads[2 * i] - wanted[i]))
        else:
            crops.append((pads[2 * i], pads[2 * i + 1]))
    return crops
