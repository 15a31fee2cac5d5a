"""1-D convolutions of the vocoder as matrix products: same parameters and results as mlx.nn's, faster on the CPU.

MLX's CPU convolution falls back to a slow path for dilated kernels (a kernel-11, dilation-5 conv
over 2400 frames and 128 channels: 1.5 s, against 30 ms as eleven shifted matrix products) and for
transposed convolutions (0.8 s for `ups.1` on 400 frames). Both are written here as products the
BLAS runs well; the weights keep MLX's layout `(out, k, in)`, so loading is unchanged.
On a GPU MLX's own convolutions run instead (cuDNN on CUDA): there the products cost a full pass over
the activation per kernel tap, and the late generator stages hold ~180k frames x 128 channels.
"""

from __future__ import annotations

import mlx.core as mx
from mlx import nn

from .stft import overlap_add

NATIVE_ON_GPU = True  # bench/kokoro_gpu_stages.py turns it off to compare the two forms on a GPU


def native() -> bool:
    """True when MLX's own convolution should run: on a GPU (see the module docstring)."""
    return NATIVE_ON_GPU and mx.default_device() == mx.gpu


class Conv1d(nn.Conv1d):
    """nn.Conv1d; stride 1 without groups runs as one matrix product per kernel tap."""

    def __call__(self, x: mx.array) -> mx.array:
        if self.stride != 1 or self.groups != 1 or native():
            return super().__call__(x)
        length = x.shape[1]
        padded = mx.pad(x, [(0, 0), (self.padding, self.padding), (0, 0)]) if self.padding else x
        out_length = length + 2 * self.padding - self.dilation * (self.weight.shape[1] - 1)
        y = None
        for tap in range(self.weight.shape[1]):
            start = tap * self.dilation
            term = padded[:, start : start + out_length] @ self.weight[:, tap, :].T  # (B, L, out)
            y = term if y is None else y + term
        assert y is not None
        return y + self.bias if "bias" in self else y


class ConvTranspose1d(nn.ConvTranspose1d):
    """nn.ConvTranspose1d as one product (each input frame -> k output frames) and an overlap-add."""

    def __call__(self, x: mx.array) -> mx.array:
        if self.dilation != 1 or self.output_padding != 0 or native():
            return super().__call__(x)
        out_channels, kernel, in_channels = self.weight.shape
        batch, length, _ = x.shape
        spread = x @ self.weight.transpose(2, 1, 0).reshape(in_channels, kernel * out_channels)
        full = overlap_add(spread.reshape(batch, length, kernel, out_channels), self.stride)
        y = full[:, self.padding : full.shape[1] - self.padding]  # (B, (L - 1) * stride + k - 2 * padding, out)
        return y + self.bias if "bias" in self else y
