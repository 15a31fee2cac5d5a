"""Whisper's front end in MLX: samples -> log-mel spectrogram (n_mels, n_frames).

STFT with a periodic Hann window of 400 samples and a hop of 160, reflect-padded by 200 on both
sides (torch.stft's `center=True`), the last frame dropped; power spectrum; Slaney-style mel
filters (librosa's default: Slaney mel scale, area-normalized triangles) from 0 to 8 kHz; log10
clamped below at 1e-10 and at 8 below the maximum; scaled as (x + 4) / 4.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import mlx.core as mx
import numpy as np

from .audio import HOP_LENGTH, N_FFT, SAMPLE_RATE

# The Slaney mel scale: linear below 1 kHz (3 mels per 200 Hz), logarithmic above.
_LINEAR_HZ_PER_MEL = 200.0 / 3.0
_BREAK_HZ = 1000.0
_BREAK_MEL = _BREAK_HZ / _LINEAR_HZ_PER_MEL  # 15 mels at 1 kHz
_LOG_STEP = math.log(6.4) / 27.0  # 27 mels per factor 6.4 in frequency


def hz_to_mel(hz: float | np.ndarray) -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / _LINEAR_HZ_PER_MEL
    logarithmic = _BREAK_MEL + np.log(np.maximum(hz, _BREAK_HZ) / _BREAK_HZ) / _LOG_STEP
    return np.where(hz >= _BREAK_HZ, logarithmic, linear)


def mel_to_hz(mel: float | np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    linear = mel * _LINEAR_HZ_PER_MEL
    logarithmic = _BREAK_HZ * np.exp(_LOG_STEP * (np.maximum(mel, _BREAK_MEL) - _BREAK_MEL))
    return np.where(mel >= _BREAK_MEL, logarithmic, linear)


@lru_cache(maxsize=4)
def mel_filters(n_mels: int, n_fft: int = N_FFT, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Slaney mel filterbank (n_mels, n_fft // 2 + 1) in float64, as librosa.filters.mel builds it."""
    fft_hz = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
    edges_hz = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sample_rate / 2.0), n_mels + 2))
    widths = np.diff(edges_hz)  # (n_mels + 1,)
    offsets = edges_hz[:, None] - fft_hz[None, :]  # (n_mels + 2, n_bins)
    rising = -offsets[:-2] / widths[:-1, None]
    falling = offsets[2:] / widths[1:, None]
    triangles = np.maximum(0.0, np.minimum(rising, falling))
    area_norm = 2.0 / (edges_hz[2:] - edges_hz[:-2])  # each triangle integrates to the same area
    filters = triangles * area_norm[:, None]
    filters.setflags(write=False)
    return filters


@lru_cache(maxsize=2)
def _hann_window(size: int) -> np.ndarray:
    """Periodic Hann window (torch.hann_window's default), as float32."""
    n = np.arange(size, dtype=np.float64)
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * n / size)).astype(np.float32)


@lru_cache(maxsize=4)
def _mlx_constants(n_mels: int) -> tuple[mx.array, mx.array]:
    window = mx.array(_hann_window(N_FFT))
    filters_t = mx.array(mel_filters(n_mels).T.astype(np.float32))  # (n_bins, n_mels)
    return window, filters_t


def _reflect_pad(samples: mx.array, width: int) -> mx.array:
    """Mirror `width` samples at each end without repeating the edge sample (numpy's 'reflect')."""
    if samples.shape[0] <= width:  # too short to mirror: extend with zeros first, as a silence tail
        samples = mx.pad(samples, [(0, width + 1 - samples.shape[0])])
    head = samples[1 : width + 1][::-1]
    tail = samples[-width - 1 : -1][::-1]
    return mx.concatenate([head, samples, tail])


FRAMES_PER_BLOCK = 6000  # 60 s per STFT block: an hour of audio never holds all its frames at once


def mel_power(padded: mx.array, start: int, count: int, n_mels: int) -> mx.array:
    """Mel power (count, n_mels) of frames start .. start + count - 1."""
    window, filters_t = _mlx_constants(n_mels)
    frames = mx.as_strided(
        padded, shape=(count, N_FFT), strides=(HOP_LENGTH, 1), offset=start * HOP_LENGTH
    )  # (count, 400)
    spectrum = mx.fft.rfft(frames * window, axis=-1)  # (count, 201) complex64
    return mx.square(mx.abs(spectrum)) @ filters_t


def log_mel_spectrogram(audio: Any, n_mels: int = 80, padding: int = 0) -> mx.array:
    """Log-mel spectrogram (n_mels, n_frames) float32 of 16 kHz mono `audio`.

    `audio` is a path, numpy or MLX array of samples; `padding` zeros are appended first (30 s of
    padding lets the caller slice full windows). n_frames = (len(audio) + padding) // 160.
    """
    if isinstance(audio, str) or hasattr(audio, "__fspath__"):
        from .audio import load_audio

        audio = load_audio(audio)
    samples = mx.array(audio) if not isinstance(audio, mx.array) else audio
    samples = samples.astype(mx.float32).reshape(-1)
    if padding > 0:
        samples = mx.pad(samples, [(0, padding)])
    n_frames = samples.shape[0] // HOP_LENGTH
    padded = _reflect_pad(samples, N_FFT // 2)
    if n_frames <= FRAMES_PER_BLOCK:
        mel = mel_power(padded, 0, n_frames, n_mels)
    else:
        blocks = []
        for start in range(0, n_frames, FRAMES_PER_BLOCK):
            blocks.append(mel_power(padded, start, min(FRAMES_PER_BLOCK, n_frames - start), n_mels))
            mx.eval(blocks[-1])  # free this block's frames and spectrum before the next
        mel = mx.concatenate(blocks, axis=0)  # (n_frames, n_mels)
    log_spec = mx.log10(mx.maximum(mel, 1e-10))
    log_spec = mx.maximum(log_spec, log_spec.max() - 8.0)  # the clamp uses the whole clip's maximum
    return ((log_spec + 4.0) / 4.0).T  # (n_mels, n_frames)
