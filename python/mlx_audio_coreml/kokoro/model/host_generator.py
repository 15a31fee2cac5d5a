"""The iSTFTNet generator on the CPU host path: everything after the harmonic source, in numpy + oneDNN.

The generator is ~95% of Kokoro's CPU time (at 24 kHz, ~50 GFLOP per second of audio, mostly the
kernel-3/7/11 dilated convolutions of the 128- and 256-channel residual blocks over 12,000 and
2,000 frames a second); host_blocks runs them with vectorized Snake passes, the kernel-7/11
convolutions through a short DFT (host_conv_fft, ~2.5x fewer CPU seconds) and the kernel-3 ones as
cache-sized im2col products (host_conv). The harmonic source and its STFT stay in MLX (cheap, and its phase code
is subtle); the inverse STFT is redone here as the same real-DFT product and overlap-add as
stft.py. Used when MLX computes on the CPU in float32 and oneDNN is installed (`host_conv.applies`);
the MLX modules remain the reference the tests compare this path against.
"""

from __future__ import annotations

from typing import Any

import mlx.core as mx
import numpy as np

from .host_blocks import HostAdaINResBlock1
from .host_conv import HostConv1d, HostConvTranspose1d, leaky_relu, padded, prepared
from .host_conv_fft import spectral_or_direct
from .host_conv_int8 import HostConv1dInt8

_STAGE_SLOPE, _POST_SLOPE = 0.1, 0.01  # generator.py's LeakyReLU slopes


class HostGenerator:
    """A prepared `Generator`: decoder features (L, C0), source spectrum, style -> audio samples."""

    def __init__(self, generator: Any, int8: bool = False) -> None:
        self.num_kernels = generator.num_kernels
        self.ups = [HostConvTranspose1d(u) for u in generator.ups]
        self.noise_convs = [HostConv1d(c) for c in generator.noise_convs]
        # the residual blocks hold ~97% of the products; their kernel-7/11 convolutions go through a DFT
        conv = HostConv1dInt8 if int8 else spectral_or_direct
        self.noise_res = [HostAdaINResBlock1(b, conv) for b in generator.noise_res]
        self.resblocks = [HostAdaINResBlock1(b, conv) for b in generator.resblocks]
        self.conv_post = HostConv1d(generator.conv_post)
        stft = generator.stft
        self.bins, self.hop, self.n_fft = stft.bins, stft.hop, stft.n_fft
        self.synthesis = np.asarray(stft._synthesis, np.float32)  # (2 bins, N), windowed inverse real DFT
        self.window_sq = (stft._window**2).astype(np.float32)

    def audio(self, x: np.ndarray, harmonics: np.ndarray, style: np.ndarray) -> np.ndarray:
        """x (L, C0), harmonics (12 L + 1, 2 bins) [magnitude | phase], style (style_dim,) -> (L * 300,)."""
        last = len(self.ups) - 1
        for i, (up, noise_conv, noise_res) in enumerate(zip(self.ups, self.noise_convs, self.noise_res)):
            source = noise_res(noise_conv(padded(harmonics, noise_conv.padding)), style)
            x = up(leaky_relu(x, _STAGE_SLOPE))
            if i == last:
                x = np.concatenate([x[1:2], x])  # ReflectionPad1d((1, 0)), as generator.py
            x += source
            blocks = self.resblocks[i * self.num_kernels : (i + 1) * self.num_kernels]
            total = blocks[0](x, style)
            for block in blocks[1:]:
                total += block(x, style)
            x = total / np.float32(self.num_kernels)
        x = self.conv_post(padded(leaky_relu(x, _POST_SLOPE), self.conv_post.padding))
        return self._inverse_stft(np.exp(x[:, : self.bins]), np.sin(x[:, self.bins :]))

    def _inverse_stft(self, magnitude: np.ndarray, phase: np.ndarray) -> np.ndarray:
        """stft.STFT.inverse on (n_frames, bins) numpy blocks -> ((n_frames - 1) hop,) samples."""
        frames_count = magnitude.shape[0]
        spectrum = np.concatenate([magnitude * np.cos(phase), magnitude * np.sin(phase)], axis=1)
        frames = spectrum @ self.synthesis  # (n_frames, N), already windowed
        signal = _overlap_add(frames, self.hop)
        envelope = _overlap_add(np.broadcast_to(self.window_sq, frames.shape), self.hop)
        pad, length = self.n_fft // 2, (frames_count - 1) * self.hop
        return signal[pad : pad + length] / envelope[pad : pad + length]


def _overlap_add(frames: np.ndarray, hop: int) -> np.ndarray:
    """(n_frames, N) -> ((n_frames - 1) hop + N,): frame t added from sample t * hop on."""
    count, width = frames.shape
    pieces = -(-width // hop)
    blocks = np.zeros((count, pieces * hop), np.float32)
    blocks[:, :width] = frames
    total = np.zeros((count + pieces - 1, hop), np.float32)
    for piece in range(pieces):
        total[piece : piece + count] += blocks[:, piece * hop : (piece + 1) * hop]
    return total.reshape(-1)[: (count - 1) * hop + width]


def run(generator: Any, x: mx.array, style: mx.array, harmonics: mx.array) -> mx.array:
    """x (B, L, C0), style (B, style_dim), harmonics (B, 12 L + 1, 2 bins) -> audio (B, L * 300).

    Callers check `host_conv.applies(x.dtype)` first. `generator.host_int8 = True` (opt-in) runs the
    residual blocks' convolutions with int8 products (host_conv_int8.py), as ONNX Runtime's int8 graph does."""
    sources = [generator.ups[0].weight, generator.conv_post.weight, generator.resblocks[0].convs1[0].weight]
    int8 = bool(getattr(generator, "host_int8", False))
    host = prepared(generator, lambda g: HostGenerator(g, int8), sources, slot="_host_int8" if int8 else "_host")
    mx.eval(x, style, harmonics)
    audio = [
        host.audio(np.array(x[b], np.float32), np.array(harmonics[b], np.float32), np.array(style[b], np.float32))
        for b in range(x.shape[0])
    ]
    return mx.array(np.stack(audio))
