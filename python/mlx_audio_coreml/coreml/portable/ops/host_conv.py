"""conv and conv_transpose with one spatial axis on the CPU host path: cpu/conv1d.py's im2col and
overlap-add kernels with oneDNN products (long stride-1 kernels through cpu/conv1d_dft.py's short
DFT), channels-last rows in and out.

Why: MLX's CPU convolution runs dilated and transposed kernels as naive loops (a converted Kokoro
vocoder spent 90% of a prediction there; cpu/conv1d.py has the numbers). When: `applies`: MLX on
the CPU, host math on, no `mx.compile` trace being recorded (host.applies), oneDNN installed, values
computed in float32 (float16 programs compute in float32 on the CPU too), constant weights (and
bias), no groups. Spatial axes of size 1 that the kernel does not move along are already dropped
by the caller. The prepared kernel (weights laid out once) is kept in the node's memo.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import TypeVar

import mlx.core as mx
import numpy as np

from ....cpu import conv1d, conv1d_dft, onednn
from ....cpu import pool as host_pool
from .. import shared
from . import host
from .registry import OpContext, compute_dtype

K = TypeVar("K")


def applies(ctx: OpContext, x: mx.array, bias: mx.array | None, groups: int) -> bool:
    """Whether this conv (weight and bias constants of the program) takes the host path now."""
    return (
        groups == 1
        and x.size > 0
        and compute_dtype(x.dtype) == mx.float32
        and host.applies(mx.float32)
        and onednn.available()
        and "weight" in ctx.constant_params
        and (bias is None or "bias" in ctx.constant_params)
    )


def _prepared(ctx: OpContext, key: str, make: Callable[[], K], share: tuple[object, ...]) -> K:
    """The node's kernel, made once and shared with every node of a loaded program that prepares
    `key` from the same weight and bias arrays (`share`: those and the parameters `make` reads)."""
    held = ctx.memo.get(key)
    if held is None:
        held = ctx.memo[key] = shared.prepared(key, share, make)
    return held.value


def _host(x: mx.array) -> np.ndarray:
    """x as float32 numpy (a view of MLX's buffer when it is one plain float32 block)."""
    x = x.astype(mx.float32) if x.dtype != mx.float32 else x
    mx.eval(x)
    return np.asarray(x)


def _bias(bias: mx.array | None) -> np.ndarray | None:
    return None if bias is None else _host(bias)


def conv(
    ctx: OpContext,
    x: mx.array,
    weight: mx.array,
    bias: mx.array | None,
    stride: int,
    dilation: int,
    pads: tuple[int, int],
    residual: mx.array | None = None,
) -> mx.array:
    """x (N, L, C_in) channels-last, MIL weight (C_out, C_in, *K) with one kernel axis other than 1
    -> (N, L', C_out) float32; plus `residual` when `absorbs(residual, that shape)` (the caller adds
    it otherwise)."""
    kernel = _prepared(
        ctx,
        "host_conv.conv",
        lambda: conv1d_dft.spectral_or_direct(
            _host(weight).reshape(weight.shape[0], weight.shape[1], -1), _bias(bias), stride, dilation
        ),
        (weight, bias, stride, dilation),
    )
    rows = _host(x)
    shape = (rows.shape[0], kernel.output_length(rows.shape[1] + pads[0] + pads[1]), kernel.out_channels)
    start = residual if residual is not None and absorbs(residual, shape) else None

    def fill(out: np.ndarray) -> None:  # out: zeros, or a copy of the residual that the conv adds to
        for b in range(rows.shape[0]):
            _conv_rows(kernel, rows[b], pads[0], out[b], start is not None)

    return host.filled(shape, fill, start)


def absorbs(residual: mx.array | None, shape: tuple[int, ...]) -> bool:
    """Whether `conv` adds `residual` itself for an output of `shape`: float32, one value per output
    element (a residual that broadcasts to `shape` with as many elements lays them out alike)."""
    return residual is not None and residual.dtype == mx.float32 and residual.size == math.prod(shape)


def _conv_rows(kernel: conv1d.Conv1d, x: np.ndarray, begin: int, out: np.ndarray, accumulate: bool) -> None:
    """One batch item x (L, C_in) into out (L', C_out), added to it when `accumulate`. Output frames
    that read only zero rows (a zero tail of x: the padded frames of a bucketed program, masked to
    zero) are the bias: they are written, not computed, so a bucket's padding costs a scan instead of
    its share of the products."""
    live = min(out.shape[0], kernel.reaching(conv1d.nonzero_rows(x), begin))
    if live > 0:
        kernel.from_rows(x, begin, out[:live], accumulate)
    if kernel.bias is not None and live < out.shape[0]:  # `out` arrives zero-filled (host.filled) or the residual
        if accumulate:
            out[live:] += kernel.bias
        else:
            out[live:] = kernel.bias


def conv_transpose(
    ctx: OpContext, x: mx.array, weight: mx.array, bias: mx.array | None, stride: int, crop: tuple[int, int]
) -> mx.array:
    """x (N, L, C_in) channels-last, MIL weight (C_in, C_out, K) -> (N, full - crop, C_out) float32."""
    return _transposed(ctx, conv1d.ConvTranspose1d, x, weight, bias, stride, crop)


def depthwise_transpose(
    ctx: OpContext, x: mx.array, weight: mx.array, bias: mx.array | None, stride: int, crop: tuple[int, int]
) -> mx.array:
    """x (N, L, C) channels-last, MIL weight (C, 1, K), groups = C -> (N, full - crop, C) float32."""
    return _transposed(ctx, conv1d.DepthwiseTranspose1d, x, weight, bias, stride, crop)


def _transposed(
    ctx: OpContext,
    kind: type[conv1d.ConvTranspose1d] | type[conv1d.DepthwiseTranspose1d],
    x: mx.array,
    weight: mx.array,
    bias: mx.array | None,
    stride: int,
    crop: tuple[int, int],
) -> mx.array:
    """A transposed conv of `kind`, prepared once per weight; each batch item's zero tail (a bucket's
    padded frames) costs a scan, not products."""
    kernel = _prepared(
        ctx, f"host_conv.{kind.__name__}", lambda: kind(_host(weight), _bias(bias), stride), (weight, bias, stride)
    )
    rows = _host(x)
    length = kernel.full_length(rows.shape[1]) - crop[0] - crop[1]

    def fill(out: np.ndarray) -> None:
        for b in range(rows.shape[0]):
            kernel(rows[b], crop, out=out[b], live=conv1d.nonzero_rows(rows[b]))

    return host.filled((rows.shape[0], length, kernel.out_channels), fill)


def pointwise(ctx: OpContext, x: mx.array, weight: mx.array, bias: mx.array | None) -> mx.array:
    """A 1x1 convolution of channels-first x (N, C_in, *D): W (C_out, C_in) times each item's
    (C_in, D) block in oneDNN, blocks of output channels on the host workers (MLX's product would
    wake OpenBLAS's threads, which spin on between calls)."""
    w, b = _prepared(
        ctx,
        "host_conv.pointwise",
        lambda: (np.ascontiguousarray(_host(weight).reshape(weight.shape[0], -1)), _bias(bias)),
        (weight, bias),
    )
    items = np.ascontiguousarray(_host(x)).reshape(x.shape[0], x.shape[1], -1)  # (N, C_in, D)

    def fill(out: np.ndarray) -> None:
        flat = out.reshape(items.shape[0], w.shape[0], -1)  # (N, C_out, D)
        for item, result in zip(items, flat):
            host_pool.run_all(functools.partial(_pointwise_rows, w, b, item, result), host_pool.even_ranges(w.shape[0]))

    return host.filled((x.shape[0], w.shape[0]) + tuple(x.shape[2:]), fill)


def _pointwise_rows(w: np.ndarray, b: np.ndarray | None, x: np.ndarray, out: np.ndarray, rows: slice) -> None:
    onednn.sgemm(w[rows], x, out[rows])
    if b is not None:
        out[rows] += b[rows, None]
