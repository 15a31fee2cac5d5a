"""Kokoro's long dilated convolutions (the generator's kernel-7 and kernel-11 ones, ~75% of its CPU time)
through cpu/conv1d_dft.py's short real DFT: an adapter from an MLX `Conv1d` module to that kernel, with
host_conv.HostConv1d's call (padded rows in, `out`, `accumulate`) and attributes (`padding`, ...).

The spectral kernel shares the im2col weight this HostConv1d prepares (a view, no second copy); it
keeps only its own taps table. The method, and its measurements, are in cpu/conv1d_dft.py.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...cpu.conv1d_dft import SpectralConv1d, uses_spectral
from .host_conv import HostConv1d


class HostConv1dSpectral(HostConv1d):
    """HostConv1d (stride 1, kernel >= conv1d_dft.MIN_KERNEL) through an N-point real DFT: same call,
    same result within float32 rounding; `size` picks N (conv1d_dft.transform_size by default)."""

    def __init__(self, conv: Any, size: int | None = None) -> None:
        super().__init__(conv)
        # MLX's (out, k, in) seen in MIL's (out, in, k) layout: SpectralConv1d transposes it back to this very buffer
        weight = self.weight.reshape(self.out_channels, self.kernel, self.in_channels).transpose(0, 2, 1)
        self.spectral = SpectralConv1d(weight, self.bias, self.stride, self.dilation, size)

    def __call__(self, x_padded: np.ndarray, out: np.ndarray | None = None, accumulate: bool = False) -> np.ndarray:
        return self.spectral(x_padded, out=out, accumulate=accumulate)


def spectral_or_direct(conv: Any) -> HostConv1d:
    """The faster host form of an MLX Conv1d: spectral for long stride-1 kernels, im2col otherwise."""
    if uses_spectral(int(conv.stride), int(conv.weight.shape[1])):
        return HostConv1dSpectral(conv)
    return HostConv1d(conv)
