"""The STFT's phase on the negative real axis does not depend on rounding: a constant stretch (the
source's clamped last half frame, unvoiced frames) has bin 1 real and negative, and gets +pi."""

from __future__ import annotations

import math

import mlx.core as mx
import numpy as np

from mlx_audio_coreml.kokoro.model.stft import STFT


def test_constant_signal_bin_one_phase_is_plus_pi_at_every_level():
    stft = STFT(20, 5)
    levels = np.linspace(0.01, 0.9, 37, dtype=np.float32)  # rounding leaves imag +-tiny, by level
    signal = mx.array(np.repeat(levels[:, None], 200, axis=1))
    magnitude, phase = stft.transform(signal)
    assert float(mx.min(magnitude[..., 1])) > 0.01 * 20 / 4 * 0.9  # bin 1 is far from silent
    assert np.all(np.asarray(phase[..., 1]) == np.float32(math.pi))


def test_phase_near_the_cut_but_off_it_keeps_its_side():
    """A slope gives bin 1 a real imaginary part (2e-4 rad off the axis): rising +, falling - ."""
    stft = STFT(20, 5)
    t = np.arange(400, dtype=np.float32) / 400
    _, rising = stft.transform(mx.array((0.5 + 1e-2 * t)[None]))
    _, falling = stft.transform(mx.array((0.5 - 1e-2 * t)[None]))
    up, down = np.asarray(rising[0, 4:-4, 1]), np.asarray(falling[0, 4:-4, 1])
    assert np.all((up > 3.0) & (up < np.float32(math.pi)))
    assert np.all((down < -3.0) & (down > -np.float32(math.pi)))
