"""The harmonic-plus-noise excitation of the iSTFTNet generator (hexgrad's `SineGen` and `SourceModuleHnNSF`).

F0 at frame rate becomes, at audio rate, the fundamental and its overtones as sines (voiced), or
noise (unvoiced), merged into one excitation channel by a learned linear layer and tanh.

hexgrad computes the phase by upsampling F0 (nearest), linearly downsampling the per-sample phase
step back to frames, summing it over frames and linearly upsampling that sum. Linear downsampling by
an integer factor reads the middle of each nearest-upsampled frame, so the frame-rate steps are
exactly `f0 * h / sample_rate`; we start from those. The random initial phases hexgrad adds to the
first sample are never read by that downsampling, so they do not change its output and are not drawn
here. The phase is kept in cycles modulo 1 at every step: on 5 s of speech-like F0 it stays within
1e-3 rad of a float64 evaluation of hexgrad's formula, where hexgrad's float32 running sum in radians
(6e4 rad by then, at the 9th harmonic) is 0.03 rad off (tests/kokoro/test_vocoder_source.py).
"""

from __future__ import annotations

import math
from functools import lru_cache

import mlx.core as mx
import numpy as np
from mlx import nn


@lru_cache(maxsize=8)
def _interpolation_weights(upsample: int) -> tuple[np.ndarray, np.ndarray]:
    """Per sample r of a frame: whether it interpolates from the previous frame, and its weight.

    Linear upsampling (align_corners=False) maps sample j = i * up + r to the frame coordinate
    i + (r + 0.5) / up - 0.5: the first half of frame i lies between frames i-1 and i, the second
    half between i and i+1.
    """
    offset = (np.arange(upsample) + 0.5) / upsample - 0.5
    from_previous = offset < 0
    weight = np.where(from_previous, offset + 1.0, offset)
    return from_previous, weight.astype(np.float32)


def harmonic_phase(f0: mx.array, harmonics: int, sample_rate: int, upsample: int) -> mx.array:
    """(B, L) F0 in Hz per frame -> (B, L * upsample, harmonics) phase in cycles, in [0, 1).

    Harmonic h (1-based) advances `f0 * h / sample_rate` cycles per sample. hexgrad's phase at frame i
    is `upsample * cumsum(step)[i]`, linearly interpolated between frames to each sample.
    """
    batch, frames = f0.shape
    multiples = mx.arange(1, harmonics + 1, dtype=mx.float32)
    step = mx.remainder(f0[..., None] * multiples / sample_rate, 1.0)  # (B, L, H) cycles per sample
    per_frame = upsample * step  # cycles advanced over one frame
    at_frame = mx.remainder(mx.cumsum(mx.remainder(per_frame, 1.0), axis=1), 1.0)  # (B, L, H)

    zeros = mx.zeros_like(per_frame[:, :1])
    # Interpolating towards frame i from i-1 adds a fraction of frame i's advance (frame 0: clamped).
    base_previous = mx.concatenate([at_frame[:, :1], at_frame[:, :-1]], axis=1)
    rise_previous = mx.concatenate([zeros, per_frame[:, 1:]], axis=1)
    # From frame i towards i+1 adds a fraction of frame i+1's advance (last frame: clamped).
    rise_next = mx.concatenate([per_frame[:, 1:], zeros], axis=1)

    from_previous, weight = _interpolation_weights(upsample)
    mask = mx.array(from_previous)[None, None, :, None]  # (1, 1, up, 1)
    weight_4d = mx.array(weight)[None, None, :, None]
    base = mx.where(mask, base_previous[:, :, None, :], at_frame[:, :, None, :])  # (B, L, up, H)
    rise = mx.where(mask, rise_previous[:, :, None, :], rise_next[:, :, None, :])
    phase = mx.remainder(base + weight_4d * rise, 1.0)
    return phase.reshape(batch, frames * upsample, harmonics)


class SineGen(nn.Module):
    """F0 per frame -> harmonic sines with additive noise, and the voiced mask, at audio rate."""

    def __init__(
        self,
        sample_rate: int,
        upsample_scale: int,
        harmonic_num: int = 0,
        sine_amp: float = 0.1,
        noise_std: float = 0.003,
        voiced_threshold: float = 0.0,
    ) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self.upsample_scale = upsample_scale
        self.dim = harmonic_num + 1  # the fundamental and its overtones
        self.sine_amp = sine_amp
        self.noise_std = noise_std
        self.voiced_threshold = voiced_threshold

    def __call__(self, f0: mx.array, key: mx.array | None) -> tuple[mx.array, mx.array]:
        """f0 (B, L) -> sines (B, L * up, dim), voiced (B, L * up, 1) as 0/1 floats.

        Gaussian noise drawn with `key` is added (hexgrad); `key=None` adds none, as the int8 ONNX
        export of Kokoro computes it.
        """
        phase = harmonic_phase(f0, self.dim, self.sample_rate, self.upsample_scale)
        sines = mx.sin(2.0 * math.pi * phase) * self.sine_amp
        voiced = mx.repeat((f0 > self.voiced_threshold).astype(mx.float32), self.upsample_scale, axis=1)[..., None]
        if key is None:
            return sines * voiced, voiced
        # Unvoiced samples are noise about as loud as the sines (amp / 3 ~ std); voiced ones get a little.
        noise_amp = voiced * self.noise_std + (1.0 - voiced) * (self.sine_amp / 3.0)
        noise = noise_amp * mx.random.normal(sines.shape, key=key)
        return sines * voiced + noise, voiced


class SourceModuleHnNSF(nn.Module):
    """Harmonic source: the SineGen channels merged into one excitation by `l_linear` and tanh."""

    def __init__(
        self,
        sample_rate: int,
        upsample_scale: int,
        harmonic_num: int = 0,
        sine_amp: float = 0.1,
        add_noise_std: float = 0.003,
        voiced_threshold: float = 0.0,
    ) -> None:
        super().__init__()
        self.l_sin_gen = SineGen(sample_rate, upsample_scale, harmonic_num, sine_amp, add_noise_std, voiced_threshold)
        self.l_linear = nn.Linear(harmonic_num + 1, 1)

    def __call__(self, f0: mx.array, key: mx.array | None) -> mx.array:
        """f0 (B, L) per frame -> excitation (B, L * upsample_scale); noise from `key` (None: none).

        hexgrad's module also returns a noise branch and the voiced mask; its generator uses neither.
        """
        sines, _ = self.l_sin_gen(f0, key)
        return mx.tanh(self.l_linear(sines))[..., 0]
