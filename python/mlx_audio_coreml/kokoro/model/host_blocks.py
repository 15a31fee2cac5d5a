"""Style-conditioned residual blocks on the CPU host path: AdainResBlk1d (prosody F0/energy, decoder) and
the generator's AdaINResBlock1 (Snake), in numpy with the convolutions of host_conv.

Same arithmetic as adain.py and generator.py, regrouped for fewer passes over memory: AdaIN's instance
norm and style affine become one per-channel scale and shift (`x a + b`), applied in the same row
block as the activation that follows (LeakyReLU or Snake) and written straight into the zero-padded
buffer the next convolution reads. numpy's sin is vectorized (~2 ns an element against ~80 ns for
MLX's scalar loop here), which is most of the Snake blocks' cost outside the products.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import mlx.core as mx
import numpy as np

from ...cpu import pool as host_pool
from .host_conv import ROWS, HostConv1d, HostDepthwiseUpsample, empty_padded, leaky_relu, prepared

_EPS = 1e-5  # InstanceNorm1d's default, as adain.py
_ADAIN_SLOPE = 0.2  # AdainResBlk1d's LeakyReLU
_INV_SQRT2 = np.float32(1 / math.sqrt(2))
_BLOCK_ROWS = 4 * ROWS  # rows per block of element-wise work

Activation = Callable[[np.ndarray, np.ndarray], None]  # (rows in, rows out), out may be a strided view


class HostAdaIN:
    """AdaIN1d: instance norm over time, then (1 + gamma) x_norm + beta with gamma, beta = fc(style)."""

    def __init__(self, norm: Any) -> None:
        self.weight = np.asarray(norm.fc.weight, np.float32)  # (2C, style)
        self.bias = np.asarray(norm.fc.bias, np.float32)

    def scale_shift(self, x: np.ndarray, style: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel (a, b) with AdaIN(x) = x a + b, from x's statistics over time (float64 sums)."""
        gamma, beta = np.split(self.weight @ style + self.bias, 2)
        blocks = host_pool.row_blocks(x.shape[0], _BLOCK_ROWS)
        sums = host_pool.run_all(lambda rows: _moments(x[rows]), blocks)
        mean = np.sum([s[0] for s in sums], axis=0) / x.shape[0]
        variance = np.sum([s[1] for s in sums], axis=0) / x.shape[0] - mean * mean  # exact enough in float64
        scale = (1.0 + gamma) / np.sqrt(np.maximum(variance, 0.0) + _EPS)
        return scale.astype(np.float32), (beta - mean * scale).astype(np.float32)


def _moments(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column sums of x and x^2 of a row block, in float64."""
    return block.sum(axis=0, dtype=np.float64), np.square(block).sum(axis=0, dtype=np.float64)


def apply(x: np.ndarray, out: np.ndarray, activation: Activation) -> None:
    """activation(x rows, out rows) over row blocks spread on the host workers."""
    host_pool.run_all(lambda rows: activation(x[rows], out[rows]), host_pool.row_blocks(x.shape[0], _BLOCK_ROWS))


def leaky_affine(scale: np.ndarray, shift: np.ndarray, slope: float) -> Activation:
    def run(rows: np.ndarray, out: np.ndarray) -> None:
        y = rows * scale
        y += shift
        leaky_relu(y, slope, out=out)

    return run


def snake_affine(scale: np.ndarray, shift: np.ndarray, alpha: np.ndarray, inv_alpha: np.ndarray) -> Activation:
    """Snake(x a + b) = y + sin(alpha y)^2 / alpha, as generator.snake computes it."""

    def run(rows: np.ndarray, out: np.ndarray) -> None:
        y = rows * scale
        y += shift
        wave = y * alpha
        np.sin(wave, out=wave)
        np.square(wave, out=wave)
        wave *= inv_alpha
        np.add(y, wave, out=out)

    return run


class HostAdainResBlk1d:
    """kokoro.model.adain.AdainResBlk1d on numpy: (L, in) -> (L or 2L, out)."""

    def __init__(self, block: Any) -> None:
        self.upsample = bool(block.upsample)
        self.norm1, self.norm2 = HostAdaIN(block.norm1), HostAdaIN(block.norm2)
        self.conv1, self.conv2 = HostConv1d(block.conv1), HostConv1d(block.conv2)
        self.conv1x1 = HostConv1d(block.conv1x1) if block.learned_sc else None
        self.pool = HostDepthwiseUpsample(block.pool) if self.upsample else None

    def __call__(self, x: np.ndarray, style: np.ndarray) -> np.ndarray:
        length, channels = x.shape
        frames = 2 * length if self.upsample else length
        scale, shift = self.norm1.scale_shift(x, style)
        act, inner = empty_padded(frames, channels, self.conv1.padding)
        if self.pool is not None:
            activated = np.empty_like(x)
            apply(x, activated, leaky_affine(scale, shift, _ADAIN_SLOPE))
            self.pool(activated, inner)
        else:
            apply(x, inner, leaky_affine(scale, shift, _ADAIN_SLOPE))
        hidden = self.conv1(act)
        scale, shift = self.norm2.scale_shift(hidden, style)
        act, inner = empty_padded(frames, hidden.shape[1], self.conv2.padding)
        apply(hidden, inner, leaky_affine(scale, shift, _ADAIN_SLOPE))
        out = self.conv2(act)
        shortcut = np.repeat(x, 2, axis=0) if self.upsample else x
        if self.conv1x1 is not None:
            shortcut = self.conv1x1(shortcut)
        out += shortcut
        out *= _INV_SQRT2
        return out


class HostAdaINResBlock1:
    """kokoro.model.generator.AdaINResBlock1 on numpy: three (AdaIN, Snake, dilated conv, AdaIN, Snake, conv)
    residual steps, (L, C) -> (L, C); `conv` builds the convolutions (HostConv1dInt8 for int8 products)."""

    def __init__(self, block: Any, conv: Callable[[Any], HostConv1d] = HostConv1d) -> None:
        self.convs1 = [conv(c) for c in block.convs1]
        self.convs2 = [conv(c) for c in block.convs2]
        self.adain1 = [HostAdaIN(n) for n in block.adain1]
        self.adain2 = [HostAdaIN(n) for n in block.adain2]
        self.alpha1 = [np.asarray(a, np.float32).reshape(-1) for a in block.alpha1]
        self.alpha2 = [np.asarray(a, np.float32).reshape(-1) for a in block.alpha2]

    def __call__(self, x: np.ndarray, style: np.ndarray) -> np.ndarray:
        """(L, C) -> a new (L, C) array. Three full-size buffers in all (the sum, one padded activation
        buffer for every conv, the hidden rows): the second conv of each step adds into the sum."""
        length, channels = x.shape
        x = x.copy()
        pad = max(conv.padding for conv in self.convs1 + self.convs2)
        full, _ = empty_padded(length, channels, pad)
        hidden = np.empty_like(x)
        for j in range(len(self.convs1)):
            self._step(x, style, self.adain1[j], self.alpha1[j], self.convs1[j], full, pad, hidden, False)
            self._step(hidden, style, self.adain2[j], self.alpha2[j], self.convs2[j], full, pad, x, True)
        return x

    @staticmethod
    def _step(
        x: np.ndarray,
        style: np.ndarray,
        norm: HostAdaIN,
        alpha: np.ndarray,
        conv: HostConv1d,
        full: np.ndarray,
        pad: int,
        out: np.ndarray,
        accumulate: bool,
    ) -> None:
        """conv(Snake(AdaIN(x))) into `out` (added when `accumulate`), the activation written into `full`
        (zero edges of `pad` rows) and read with the conv's own padding."""
        scale, shift = norm.scale_shift(x, style)
        length = x.shape[0]
        apply(x, full[pad : pad + length], snake_affine(scale, shift, alpha, (1.0 / alpha).astype(np.float32)))
        conv(full[pad - conv.padding : pad + length + conv.padding], out=out, accumulate=accumulate)


def run_adain_resblk(block: Any, x: mx.array, style: mx.array) -> mx.array:
    """An AdainResBlk1d through the host path: x (B, L, in), style (B, style_dim) -> (B, L or 2L, out)."""
    host = prepared(block, HostAdainResBlk1d, [block.conv1.weight, block.conv2.weight, block.norm1.fc.weight])
    mx.eval(x, style)
    outs = [host(np.array(x[b], np.float32), np.array(style[b], np.float32)) for b in range(x.shape[0])]
    return mx.array(np.stack(outs))
