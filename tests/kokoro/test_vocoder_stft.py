"""The generator's STFT pair against float64 numpy references written from torch.stft/istft's definitions."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

import mlx_audio_coreml  # noqa: F401  (BLAS first)
from mlx_audio_coreml.kokoro.model.stft import STFT, hann_window, overlap_add

N_FFT, HOP = 20, 5


def reference_stft(signal: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """torch.stft(center=True, pad_mode='reflect', periodic Hann, onesided): (B, frames, bins) complex."""
    padded = np.pad(signal, [(0, 0), (n_fft // 2, n_fft // 2)], mode="reflect")
    n_frames = (padded.shape[1] - n_fft) // hop + 1
    frames = np.stack([padded[:, t * hop : t * hop + n_fft] for t in range(n_frames)], axis=1)
    return np.fft.rfft(frames * hann_window(n_fft), axis=-1)


def reference_istft(spectrum: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """torch.istft(center=True, periodic Hann, length=None): windowed irfft, overlap-add, divide by sum w^2."""
    window = hann_window(n_fft)
    batch, n_frames, _ = spectrum.shape
    total = (n_frames - 1) * hop + n_fft
    out = np.zeros((batch, total))
    envelope = np.zeros(total)
    for t in range(n_frames):
        out[:, t * hop : t * hop + n_fft] += np.fft.irfft(spectrum[:, t], n=n_fft, axis=-1) * window
        envelope[t * hop : t * hop + n_fft] += window**2
    pad = n_fft // 2
    keep = slice(pad, pad + (n_frames - 1) * hop)
    return out[:, keep] / envelope[keep]


def test_overlap_add_matches_a_frame_by_frame_sum():
    rng = np.random.default_rng(0)
    for n, hop in [(20, 5), (7, 3), (4, 4)]:
        frames = rng.standard_normal((2, 9, n))
        expected = np.zeros((2, 8 * hop + n))
        for t in range(9):
            expected[:, t * hop : t * hop + n] += frames[:, t]
        got = np.array(overlap_add(mx.array(frames.astype(np.float32)), hop))
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, atol=1e-5)


def test_forward_stft_matches_torch_definition():
    rng = np.random.default_rng(1)
    signal = rng.standard_normal((2, 600))
    expected = reference_stft(signal, N_FFT, HOP)

    magnitude, phase = STFT(N_FFT, HOP).transform(mx.array(signal.astype(np.float32)))

    assert magnitude.shape == expected.shape == (2, 600 // HOP + 1, N_FFT // 2 + 1)
    np.testing.assert_allclose(np.array(magnitude), np.abs(expected), atol=2e-5)
    # Compare phases as unit vectors: the angle wraps at +-pi.
    got = np.exp(1j * np.array(phase).astype(np.float64))
    strong = np.abs(expected) > 1e-3
    np.testing.assert_allclose(got[strong], np.exp(1j * np.angle(expected))[strong], atol=1e-4)


def test_forward_stft_phase_is_plus_pi_on_the_negative_real_axis():
    # A constant negative signal: every DC bin is real and negative, where torch.angle gives +pi.
    _, phase = STFT(N_FFT, HOP).transform(-mx.ones((1, 100)))
    assert np.allclose(np.array(phase)[0, :, 0], np.pi)


def test_inverse_stft_matches_torch_definition_tightly():
    rng = np.random.default_rng(2)
    magnitude = np.exp(rng.standard_normal((2, 121, N_FFT // 2 + 1)))
    phase = np.sin(rng.standard_normal((2, 121, N_FFT // 2 + 1)) * 3)
    expected = reference_istft(magnitude * np.exp(1j * phase), N_FFT, HOP)

    got = STFT(N_FFT, HOP).inverse(mx.array(magnitude.astype(np.float32)), mx.array(phase.astype(np.float32)))

    assert got.shape == expected.shape == (2, 600)
    scale = np.abs(expected).max()
    assert np.abs(np.array(got) - expected).max() < 1e-6 * scale * 10


@pytest.mark.parametrize("length", [600, 1200])
def test_inverse_undoes_forward(length):
    signal = np.random.default_rng(3).standard_normal((1, length)).astype(np.float32)
    stft = STFT(N_FFT, HOP)
    back = stft.inverse(*stft.transform(mx.array(signal)))
    np.testing.assert_allclose(np.array(back), signal, atol=1e-5)


def test_empty_bins_have_zero_phase_whatever_the_rounding():
    # A constant windowed frame has energy in bins 0 and 1 (the Hann window's own spectrum); the others
    # are rounding noise (~1e-9) whose angle is arbitrary.
    magnitude, phase = STFT(N_FFT, HOP).transform(mx.full((2, 200), 0.03))
    assert np.all(np.array(magnitude)[:, :, 2:] < 1e-6) and np.all(np.array(phase)[:, :, 2:] == 0)
    assert np.all(np.array(magnitude)[:, :, :2] > 0.1)
