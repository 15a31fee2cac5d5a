"""1-D convolutions on the CPU host path: numpy rows (channels last), oneDNN float32 products, row blocks
spread over the host workers.

Why: MLX's CPU convolutions run the vocoder's dilated kernel-11 convs at ~9 GFLOP/s on this machine
and its element-wise sin/tanh/exp are scalar loops (~80 ns each under load); here a convolution is
an im2col block of `ROWS` output frames (k taps side by side, ~1.4 MB for 1408 columns, so it stays
in cache) times the (k * in, out) weight in one oneDNN sgemm, each worker taking whole blocks with a
single-threaded kernel (measured ~17 GFLOP/s per core here under load 15, against MLX's 9 for both).

Layouts: activations `(L, C)` float32, C-contiguous. Weights arrive in MLX's conv layout
`(out, k, in)` (`mlx.nn.Conv1d.weight`), read once at preparation. A convolution takes its input
already padded (`padded` makes a copy with zero rows): callers that produce the input anyway write
it straight into a padded buffer (`empty_padded`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import mlx.core as mx
import numpy as np

from ...cpu import host_math, onednn
from ...cpu import pool as host_pool
from ...cpu.conv1d import im2col

ROWS = 256  # output frames per im2col block
H = TypeVar("H")


def applies(dtype: mx.Dtype) -> bool:
    """True when the host path may run: MLX on the CPU in float32, host kernels on, oneDNN present."""
    return host_math.available(dtype) and onednn.available()


def prepared(module: Any, build: Callable[[Any], H], sources: Sequence[mx.array], slot: str = "_host") -> H:
    """The host form of an MLX module, built on first use and rebuilt once any of `sources` (weights
    whose identity changes when `load_state` replaces them) is a different array; `slot` names the
    attribute it is kept in (one per variant, such as int8)."""
    cached = getattr(module, slot, None)
    if cached is None or len(cached[0]) != len(sources) or any(a is not b for a, b in zip(cached[0], sources)):
        mx.eval(module.parameters())
        cached = (list(sources), build(module))
        object.__setattr__(module, slot, cached)  # not a parameter: kept off the module tree
    return cached[1]


def empty_padded(length: int, channels: int, pad: int) -> tuple[np.ndarray, np.ndarray]:
    """A (length + 2 pad, channels) buffer with zero edge rows, and the (length, channels) view inside it."""
    full = np.empty((length + 2 * pad, channels), np.float32)
    full[:pad] = 0.0
    full[pad + length :] = 0.0
    return full, full[pad : pad + length]


def padded(x: np.ndarray, pad: int) -> np.ndarray:
    """(L, C) -> (L + 2 pad, C) with zero rows at both ends (x itself when pad is 0)."""
    if pad == 0:
        return x
    full, inner = empty_padded(x.shape[0], x.shape[1], pad)
    inner[:] = x
    return full


def leaky_relu(x: np.ndarray, slope: float, out: np.ndarray | None = None) -> np.ndarray:
    """max(x, slope x) for 0 < slope < 1 (equal to LeakyReLU there); into `out` when given."""
    return np.maximum(x, x * np.float32(slope), out=out)


class HostConv1d:
    """A prepared Conv1d: `x_padded (L + 2 padding, in)` -> `(L_out, out)`; any stride and dilation, no groups."""

    def __init__(self, conv: Any) -> None:
        weight = np.asarray(conv.weight, np.float32)  # (out, k, in)
        self.out_channels, self.kernel, self.in_channels = weight.shape
        self.weight = np.ascontiguousarray(weight.reshape(self.out_channels, -1))  # (out, k * in): tap-major columns
        self.bias = np.asarray(conv.bias, np.float32) if "bias" in conv else None
        self.stride, self.dilation, self.padding = int(conv.stride), int(conv.dilation), int(conv.padding)
        if int(getattr(conv, "groups", 1)) != 1:
            raise ValueError("grouped convolutions are not host convolutions")

    def output_length(self, padded_length: int) -> int:
        return (padded_length - self.dilation * (self.kernel - 1) - 1) // self.stride + 1

    def __call__(self, x_padded: np.ndarray, out: np.ndarray | None = None, accumulate: bool = False) -> np.ndarray:
        """The convolution of an already padded input; writes into `out` ((L_out, out) rows) when given, or
        adds to it when `accumulate` (a residual sum without another full-size array)."""
        length = self.output_length(x_padded.shape[0])
        if out is None:
            if accumulate:
                raise ValueError("accumulate needs out")
            out = np.empty((length, self.out_channels), np.float32)
        result = out
        host_pool.run_all(
            lambda rows: self._rows(x_padded, rows, result[rows], accumulate), host_pool.row_blocks(length, ROWS)
        )
        return result

    def columns(self, x: np.ndarray, rows: slice) -> np.ndarray:
        """The im2col block of output frames `rows`: (rows, k * in), tap-major, in x's dtype (a scratch buffer)."""
        if self.kernel == 1 and self.stride == 1:
            return np.ascontiguousarray(x[rows])
        return im2col(x, rows, self.kernel, self.stride, self.dilation, x.dtype.type)

    def _rows(self, x: np.ndarray, rows: slice, out: np.ndarray, accumulate: bool = False) -> None:
        onednn.sgemm(self.columns(x, rows), self.weight, out, b_transposed=True, accumulate=accumulate)
        if self.bias is not None:
            out += self.bias


class HostConvTranspose1d:
    """A prepared ConvTranspose1d (no groups, dilation 1, output_padding 0): products and an overlap-add per
    block of output rows, written once into the result (no full-size zero buffers).

    Frame t of the input spreads over output frames t * stride .. t * stride + k - 1 (mlx's
    `ConvTranspose1d` semantics, as the MLX path in conv.py computes them), cropped by `padding`. With the
    taps padded with zeros to `pieces * stride`, output group q (frames q * stride .. q * stride + stride - 1
    before the crop) is the sum over c < pieces of piece c of input frame q - c."""

    def __init__(self, conv: Any) -> None:
        weight = np.asarray(conv.weight, np.float32)  # (out, k, in)
        self.out_channels, self.kernel, self.in_channels = weight.shape
        self.stride, self.padding = int(conv.stride), int(conv.padding)
        self.pieces = -(-self.kernel // self.stride)
        taps = np.zeros((self.pieces * self.stride, self.out_channels, self.in_channels), np.float32)
        taps[: self.kernel] = weight.transpose(1, 0, 2)
        self.weight = taps.reshape(-1, self.in_channels)  # (pieces * stride * out, in): row j * out + o
        self.bias = np.asarray(conv.bias, np.float32) if "bias" in conv else None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """(L, in) -> ((L - 1) stride + k - 2 padding, out)."""
        length = x.shape[0]
        groups = np.empty((length + self.pieces - 1, self.stride * self.out_channels), np.float32)
        host_pool.run_all(lambda rows: self._groups(x, rows, groups), host_pool.row_blocks(groups.shape[0], ROWS))
        frames = groups.reshape(-1, self.out_channels)
        return frames[self.padding : (length - 1) * self.stride + self.kernel - self.padding]

    def _groups(self, x: np.ndarray, rows: slice, groups: np.ndarray) -> None:
        first, last = max(rows.start - self.pieces + 1, 0), min(rows.stop, x.shape[0])
        width = self.stride * self.out_channels
        spread = np.empty((last - first, self.pieces * width), np.float32)
        onednn.sgemm(np.ascontiguousarray(x[first:last]), self.weight, spread, b_transposed=True)
        out = groups[rows]
        out[:] = 0.0 if self.bias is None else np.tile(self.bias, self.stride)
        for piece in range(self.pieces):  # group q takes piece c of input frame q - c
            lo, hi = max(rows.start, first + piece), min(rows.stop, last + piece)
            if lo < hi:
                out[lo - rows.start : hi - rows.start] += spread[
                    lo - piece - first : hi - piece - first, piece * width : (piece + 1) * width
                ]


class HostDepthwiseUpsample:
    """hexgrad's `pool`: depthwise ConvTranspose1d(k=3, stride=2, padding=1, output_padding=1): L -> 2L.

    With the crop, output 2i = x[i] w1 and output 2i+1 = x[i] w2 + x[i+1] w0 (x[L] = 0), plus bias;
    the weight arrives in MLX's layout (C, 3, 1) (kokoro.model.adain.DepthwiseConvTranspose1d)."""

    def __init__(self, pool: Any) -> None:
        weight = np.asarray(pool.weight, np.float32)[:, :, 0]  # (C, 3)
        self.taps = [np.ascontiguousarray(weight[:, j]) for j in range(3)]
        self.bias = np.asarray(pool.bias, np.float32)

    def __call__(self, x: np.ndarray, out: np.ndarray) -> np.ndarray:
        """(L, C) -> `out` (2L, C)."""
        w0, w1, w2 = self.taps
        even, odd = out[0::2], out[1::2]
        np.multiply(x, w1, out=even)
        even += self.bias
        np.multiply(x, w2, out=odd)
        odd[:-1] += x[1:] * w0
        odd += self.bias
        return out
