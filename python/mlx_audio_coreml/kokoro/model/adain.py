"""Style-conditioned residual blocks shared by the prosody predictor and the decoder: AdaIN1d, AdainResBlk1d.

Layout: every block here takes and returns channels last, `(B, T, C)` (MLX's convolution
layout); the style `s` is `(B, style_dim)`. Parameter names follow hexgrad's istftnet.py
(`conv1`, `conv2`, `norm1.fc`, `norm2.fc`, `conv1x1`, `pool`), so canonical keys load one to one.

AdaIN1d's instance norm carries no affine parameters: the trained weights use affine=False (as
StyleTTS2 did); hexgrad's affine=True exists only for an ONNX-export bug and holds ones and zeros.
"""

from __future__ import annotations

import math

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from . import host_blocks, host_conv

_INSTANCE_NORM_EPS = 1e-5  # torch.nn.InstanceNorm1d's default
_LEAKY_SLOPE = 0.2


class AdaIN1d(nn.Module):
    """Instance norm over time, then `(1 + gamma) * x + beta` with gamma, beta from the style."""

    def __init__(self, style_dim: int, num_features: int) -> None:
        super().__init__()
        self.fc = nn.Linear(style_dim, 2 * num_features)

    def statistics(self, x: mx.array, s: mx.array) -> tuple[mx.array, mx.array, mx.array, mx.array]:
        """(mean, 1 / std, gamma, beta), each (B, 1, C): what `__call__` applies to x."""
        gamma, beta = mx.split(self.fc(s)[:, None, :], 2, axis=-1)
        mean = mx.mean(x, axis=1, keepdims=True)
        inv_std = mx.rsqrt(mx.var(x, axis=1, keepdims=True) + _INSTANCE_NORM_EPS)
        return mean, inv_std, gamma, beta

    def __call__(self, x: mx.array, s: mx.array) -> mx.array:
        return styled(x, *self.statistics(x, s))


def styled(x: mx.array, mean: mx.array, inv_std: mx.array, gamma: mx.array, beta: mx.array) -> mx.array:
    """AdaIN's elementwise part: normalize x with its statistics, then scale and shift by the style."""
    return (1 + gamma) * ((x - mean) * inv_std) + beta


class DepthwiseConvTranspose1d(nn.Module):
    """hexgrad's `pool`: ConvTranspose1d(C, C, k=3, stride=2, groups=C, padding=1, output_padding=1): T -> 2T.

    `mlx.nn.ConvTranspose1d` has no groups, so this holds the weight in MLX's layout `(C, 3, 1)`
    and converts PyTorch's `(C, 1, 3)` in `from_torch_layout`.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = mx.zeros((channels, 3, 1))
        self.bias = mx.zeros((channels,))

    @staticmethod
    def from_torch_layout(name: str, value: np.ndarray) -> np.ndarray:
        return value.transpose(0, 2, 1) if name == "weight" else value

    def __call__(self, x: mx.array) -> mx.array:
        groups = x.shape[-1]
        y = mx.conv_transpose1d(x, self.weight, stride=2, padding=1, output_padding=1, groups=groups)
        return y + self.bias


def _leaky_relu(x: mx.array) -> mx.array:
    return nn.leaky_relu(x, _LEAKY_SLOPE)


class AdainResBlk1d(nn.Module):
    """Two AdaIN -> LeakyReLU -> conv3 steps plus a shortcut, summed and scaled by 1/sqrt(2).

    With `upsample`, the residual branch doubles time with the learned depthwise `pool` after its
    first activation, and the shortcut repeats each frame twice (nearest neighbour).
    """

    def __init__(self, dim_in: int, dim_out: int, style_dim: int, upsample: bool = False) -> None:
        super().__init__()
        self.upsample = upsample
        self.learned_sc = dim_in != dim_out
        self.conv1 = nn.Conv1d(dim_in, dim_out, 3, padding=1)
        self.conv2 = nn.Conv1d(dim_out, dim_out, 3, padding=1)
        self.norm1 = AdaIN1d(style_dim, dim_in)
        self.norm2 = AdaIN1d(style_dim, dim_out)
        if self.learned_sc:
            self.conv1x1 = nn.Conv1d(dim_in, dim_out, 1, bias=False)
        if upsample:
            self.pool = DepthwiseConvTranspose1d(dim_in)

    def _shortcut(self, x: mx.array) -> mx.array:
        if self.upsample:
            x = mx.repeat(x, 2, axis=1)
        return self.conv1x1(x) if self.learned_sc else x

    def _residual(self, x: mx.array, s: mx.array) -> mx.array:
        x = _leaky_relu(self.norm1(x, s))
        if self.upsample:
            x = self.pool(x)
        x = self.conv1(x)
        x = _leaky_relu(self.norm2(x, s))
        return self.conv2(x)

    def __call__(self, x: mx.array, s: mx.array) -> mx.array:
        if host_conv.applies(x.dtype):  # MLX on the CPU: numpy + oneDNN (host_blocks.py)
            return host_blocks.run_adain_resblk(self, x, s)
        return (self._residual(x, s) + self._shortcut(x)) * (1 / math.sqrt(2))
