"""Short-time Fourier transforms of the iSTFTNet generator, written as real matrix products in MLX.

The generator's STFT is tiny (n_fft 20, hop 5: one frame every 5 samples), so both directions are
a gather or an overlap-add around one real DFT product; no complex numbers, which keeps the same
graph expressible as a Core ML program. Semantics follow `torch.stft` / `torch.istft` with
`center=True`, a periodic Hann window and reflect padding, as hexgrad's `TorchSTFT` calls them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import mlx.core as mx
import numpy as np

SILENT_BIN = 1e-6  # magnitudes below are rounding noise: unit-scale frames leave ~1e-8 in empty bins
BRANCH_CUT = 1e-5  # |imag| / magnitude below this on the negative real axis is rounding noise


def hann_window(length: int) -> np.ndarray:
    """The periodic Hann window (`torch.hann_window(length, periodic=True)`), float64."""
    n = np.arange(length)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * n / length)


def overlap_add(frames: mx.array, hop: int) -> mx.array:
    """(B, n_frames, N, *C) -> (B, (n_frames - 1) * hop + N, *C): frame t added from sample t * hop on.

    A frame spans ceil(N / hop) hop-sized blocks; block c of every frame lands c blocks later, so the
    sum is ceil(N / hop) shifted copies (4 for the generator's iSTFT), never a loop over frames.
    """
    batch, n_frames, n = frames.shape[:3]
    rest = list(frames.shape[3:])
    no_pad = [(0, 0)] * len(rest)
    pieces = math.ceil(n / hop)
    if pieces * hop != n:
        frames = mx.pad(frames, [(0, 0), (0, 0), (0, pieces * hop - n), *no_pad])
    blocks = frames.reshape(batch, n_frames, pieces, hop, *rest)  # (B, T, c, H, *C)
    total = None
    for c in range(pieces):
        shifted = mx.pad(blocks[:, :, c], [(0, 0), (c, pieces - 1 - c), (0, 0), *no_pad])  # (B, T + pieces - 1, H, *C)
        total = shifted if total is None else total + shifted
    assert total is not None
    out = total.reshape(batch, (n_frames + pieces - 1) * hop, *rest)
    return out[:, : (n_frames - 1) * hop + n]


@dataclass(frozen=True)
class STFT:
    """`torch.stft`/`torch.istft` with center=True and a periodic Hann window of n_fft samples."""

    n_fft: int
    hop: int

    @property
    def bins(self) -> int:
        return self.n_fft // 2 + 1

    @cached_property
    def _window(self) -> np.ndarray:
        return hann_window(self.n_fft)

    @cached_property
    def _analysis(self) -> mx.array:
        """(N, 2 * bins): windowed frame -> [real | imag] of exp(-2 pi i k n / N)."""
        angle = 2.0 * np.pi * np.outer(np.arange(self.n_fft), np.arange(self.bins)) / self.n_fft
        sin = np.sin(angle)
        sin[:, 0] = 0.0  # exact zeros: the DC and Nyquist bins are real, as in an FFT
        if self.n_fft % 2 == 0:
            sin[:, -1] = 0.0
        basis = np.concatenate([np.cos(angle), -sin], axis=1) * self._window[:, None]
        return mx.array(basis.astype(np.float32))

    @cached_property
    def _synthesis(self) -> mx.array:
        """(2 * bins, N): [real | imag] -> windowed inverse real DFT (what irfft does, times the window)."""
        angle = 2.0 * np.pi * np.outer(np.arange(self.bins), np.arange(self.n_fft)) / self.n_fft
        # Bins 1..N/2-1 stand for themselves and their mirrored conjugates; DC and Nyquist only once.
        weight = np.full(self.bins, 2.0)
        weight[0] = 1.0
        if self.n_fft % 2 == 0:
            weight[-1] = 1.0
        real = weight[:, None] * np.cos(angle)
        imag = -weight[:, None] * np.sin(angle)
        imag[0] = 0.0  # irfft ignores the imaginary part of the DC and Nyquist bins
        if self.n_fft % 2 == 0:
            imag[-1] = 0.0
        basis = np.concatenate([real, imag], axis=0) * self._window[None, :] / self.n_fft
        return mx.array(basis.astype(np.float32))

    def transform(self, signal: mx.array) -> tuple[mx.array, mx.array]:
        """(B, T) -> magnitude, phase, each (B, T // hop + 1, bins) (frames first, bins last)."""
        pad = self.n_fft // 2
        padded = _reflect_pad(signal, pad)
        n_frames = (padded.shape[1] - self.n_fft) // self.hop + 1
        index = mx.arange(n_frames)[:, None] * self.hop + mx.arange(self.n_fft)[None, :]  # (T', N)
        frames = padded[:, index]  # (B, T', N)
        spectrum = frames @ self._analysis  # (B, T', 2 * bins)
        real, imag = spectrum[..., : self.bins], spectrum[..., self.bins :]
        magnitude = mx.sqrt(real * real + imag * imag)
        # torch.angle gives +pi on the negative real axis. A bin there whose imaginary part is rounding
        # (bin 1 of a constant stretch of the source: the clamped last frame, unvoiced frames) would get
        # +pi or -pi by summation order alone; it gets +pi, the angle of its exact value.
        on_cut = (real < 0) & (mx.abs(imag) <= BRANCH_CUT * magnitude)
        phase = mx.where(on_cut, math.pi, mx.arctan2(imag, real))
        # A bin that is float32 rounding noise (a constant or silent frame) has no phase: its angle would
        # depend on summation order (batch size, BLAS, device), so it is set to 0.
        return magnitude, mx.where(magnitude < SILENT_BIN, 0.0, phase)

    def inverse(self, magnitude: mx.array, phase: mx.array) -> mx.array:
        """magnitude, phase (B, n_frames, bins) -> (B, (n_frames - 1) * hop) samples."""
        n_frames = magnitude.shape[1]
        spectrum = mx.concatenate([magnitude * mx.cos(phase), magnitude * mx.sin(phase)], axis=-1)
        frames = spectrum @ self._synthesis  # (B, n_frames, N), already windowed
        signal = overlap_add(frames, self.hop)
        pad = self.n_fft // 2
        length = (n_frames - 1) * self.hop
        return signal[:, pad : pad + length] / self._envelope(n_frames)[pad : pad + length]

    def _envelope(self, n_frames: int) -> mx.array:
        """Sum of the squared windows that overlap each sample (torch.istft's normalizer)."""
        squared = mx.array((self._window**2).astype(np.float32))
        frames = mx.broadcast_to(squared, (1, n_frames, self.n_fft))
        return overlap_add(frames, self.hop)[0]


def _reflect_pad(signal: mx.array, pad: int) -> mx.array:
    """(B, T) reflect-padded by `pad` on both sides (the edge sample itself is not repeated)."""
    left = signal[:, 1 : pad + 1][:, ::-1]
    right = signal[:, -pad - 1 : -1][:, ::-1]
    return mx.concatenate([left, signal, right], axis=1)
