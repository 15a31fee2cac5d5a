"""The MLX log-mel front end against a float64 numpy reference of Whisper's front end.

The reference is built here from the definitions, independently of mel.py: frames cut one by one,
a periodic Hann window, numpy's FFT in float64, and triangular Slaney filters made by linear
interpolation between their corner frequencies (not by mel.py's vectorized slopes).
"""

from __future__ import annotations

import math

import mlx.core as mx
import numpy as np
import pytest
from model_helpers import JFK

from mlx_audio_coreml.whisper.audio import N_SAMPLES, load_audio
from mlx_audio_coreml.whisper.mel import log_mel_spectrogram, mel_filters


def slaney_mel(hz: float) -> float:
    """Slaney's scale: 3 mels per 200 Hz up to 1 kHz, then 27 mels per factor 6.4."""
    return 3.0 * hz / 200.0 if hz < 1000.0 else 15.0 + 27.0 * math.log(hz / 1000.0) / math.log(6.4)


def slaney_hz(mel: float) -> float:
    return 200.0 * mel / 3.0 if mel < 15.0 else 1000.0 * 6.4 ** ((mel - 15.0) / 27.0)


def reference_filters(n_mels: int, n_fft: int = 400, rate: int = 16000) -> np.ndarray:
    bins_hz = np.arange(n_fft // 2 + 1) * rate / n_fft
    top = slaney_mel(rate / 2)
    corners = [slaney_hz(top * i / (n_mels + 1)) for i in range(n_mels + 2)]
    filters = np.zeros((n_mels, bins_hz.size))
    for i in range(n_mels):
        low, mid, high = corners[i : i + 3]
        triangle = np.interp(bins_hz, [low, mid, high], [0.0, 1.0, 0.0], left=0.0, right=0.0)
        filters[i] = triangle * 2.0 / (high - low)  # equal area per filter ("slaney" norm)
    return filters


def reference_log_mel(samples: np.ndarray, n_mels: int) -> np.ndarray:
    samples = samples.astype(np.float64)
    n_fft, hop = 400, 160
    window = np.array([0.5 - 0.5 * math.cos(2 * math.pi * n / n_fft) for n in range(n_fft)])
    padded = np.pad(samples, n_fft // 2, mode="reflect")
    n_frames = 1 + (padded.size - n_fft) // hop
    frames = np.stack([padded[i * hop : i * hop + n_fft] for i in range(n_frames)])
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2  # (frames, 201)
    mel = reference_filters(n_mels) @ power[:-1].T  # Whisper drops the last frame
    log = np.log10(np.maximum(mel, 1e-10))
    log = np.maximum(log, log.max() - 8.0)
    return (log + 4.0) / 4.0


@pytest.mark.parametrize("n_mels", [80, 128])
def test_filterbank_matches_an_independent_slaney_construction(n_mels):
    np.testing.assert_allclose(mel_filters(n_mels), reference_filters(n_mels), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("n_mels", [80, 128])
def test_log_mel_matches_the_float64_reference_on_speech(n_mels):
    samples = load_audio(JFK)[: 16000 * 4]
    ours = np.array(log_mel_spectrogram(samples, n_mels=n_mels))
    expected = reference_log_mel(samples, n_mels)
    assert ours.shape == expected.shape == (n_mels, samples.size // 160)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, expected, atol=2e-4, rtol=0)


def test_log_mel_matches_the_reference_with_padding_and_noise():
    rng = np.random.default_rng(0)
    samples = (rng.standard_normal(12345) * 0.1).astype(np.float32)
    ours = np.array(log_mel_spectrogram(samples, padding=1000))
    expected = reference_log_mel(np.concatenate([samples, np.zeros(1000, np.float32)]), 80)
    np.testing.assert_allclose(ours, expected, atol=2e-4, rtol=0)


def test_long_audio_computed_in_blocks_matches_one_pass(monkeypatch):
    from mlx_audio_coreml.whisper import mel as mel_module

    samples = load_audio(JFK)
    whole = np.array(log_mel_spectrogram(samples))
    monkeypatch.setattr(mel_module, "FRAMES_PER_BLOCK", 250)
    blocked = np.array(log_mel_spectrogram(samples))
    np.testing.assert_allclose(blocked, whole, atol=1e-5)


def test_thirty_seconds_of_padding_gives_whole_windows():
    samples = load_audio(JFK)
    mel = log_mel_spectrogram(samples, padding=N_SAMPLES)
    assert mel.shape == (80, (samples.size + N_SAMPLES) // 160)
    assert isinstance(mel, mx.array)


def test_accepts_mlx_arrays_and_paths():
    samples = load_audio(JFK)[:8000]
    from_numpy = np.array(log_mel_spectrogram(samples))
    from_mlx = np.array(log_mel_spectrogram(mx.array(samples)))
    np.testing.assert_array_equal(from_numpy, from_mlx)
    assert log_mel_spectrogram(str(JFK)).shape[0] == 80


def test_clips_shorter_than_the_window_still_give_frames():
    mel = log_mel_spectrogram(np.zeros(170, np.float32) + 0.01)
    assert mel.shape == (80, 1)
    assert np.isfinite(np.array(mel)).all()


@pytest.mark.slow
@pytest.mark.parametrize("n_mels", [80, 128])
def test_filterbank_matches_openai_whisper_mel_filters_npz(n_mels, openai_whisper_assets):
    """openai-whisper's own filters (whisper/assets/mel_filters.npz in its sdist); needs PyPI."""
    theirs = np.load(openai_whisper_assets / "mel_filters.npz")[f"mel_{n_mels}"]
    np.testing.assert_allclose(mel_filters(n_mels), theirs, atol=1e-6, rtol=1e-5)
