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

from collections.abc import Callable
from typing import TypeVar

import mlx.core as mx
import numpy as np

from ....cpu import conv1d, conv1d_dft, onednn
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


def _prepared(ctx: OpContext, key: str, make: Callable[[], K]) -> K:
    kernel = ctx.memo.get(key)
    if kernel is None:
        kernel = ctx.memo[key] = make()
    return kernel


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
) -> mx.array:
    """x (N, L, C_in) channels-last, MIL weight (C_out, C_in, *K) with one kernel axis other than 1
    -> (N, L', C_out) float32."""
    kernel = _prepared(
        ctx,
        "host_conv.conv",
        lambda: conv1d_dft.spectral_or_direct(
            _host(weight).reshape(weight.shape[0], weight.shape[1], -1), _bias(bias), stride, dilation
        ),
    )
    rows = _host(x)
    length = kernel.output_length(rows.shape[1] + pads[0] + pads[1])

    def fill(out: np.ndarray) -> None:
        for b in range(rows.shape[0]):
            kernel(conv1d.zero_padded(rows[b], *pads), out=out[b])

    return host.filled((rows.shape[0], length, kernel.out_channels), fill)


def conv_transpose(
    ctx: OpContext, x: mx.array, weight: mx.array, bias: mx.array | None, stride: int, crop: tuple[int, int]
) -> mx.array:
    """x (N, L, C_in) channels-last, MIL weight (C_in, C_out, K) -> (N, full - crop, C_out) float32."""
    kernel = _prepared(
        ctx, "host_conv.conv_transpose", lambda: conv1d.ConvTranspose1d(_host(weight), _bias(bias), stride)
    )
    rows = _host(x)
    length = kernel.full_length(rows.shape[1]) - crop[0] - crop[1]

    def fill(out: np.ndarray) -> None:
        for b in range(rows.shape[0]):
            out[b] = kernel(rows[b], crop)

    return host.filled((rows.shape[0], length, kernel.out_channels), fill)
