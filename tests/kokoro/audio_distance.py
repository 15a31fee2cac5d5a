"""A log-mel distance between two 24 kHz waveforms (numpy only), for comparing vocoder outputs that cannot be
equal sample for sample (int8 activations in the reference graph, phase drift of the harmonic source)."""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 24000
N_FFT, HOP, N_MELS = 1024, 256, 80
FLOOR_DB = 60.0  # bins more than this far below the loudest one count as silence in both signals


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + hz / 700.0)


def mel_filters(sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangular HTK-mel filters from 0 Hz to Nyquist."""
    edges_mel = np.linspace(0.0, _hz_to_mel(np.array(sample_rate / 2)), n_mels + 2)
    edges = 700.0 * (10 ** (edges_mel / 2595.0) - 1.0)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    lower, center, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs - lower) / (center - lower)
    falling = (upper - freqs) / (upper - center)
    return np.maximum(0.0, np.minimum(rising, falling))


def log_mel_db(audio: np.ndarray) -> np.ndarray:
    """(frames, n_mels) mel power in dB of a 1-D waveform (Hann window, hop 256)."""
    audio = np.asarray(audio, dtype=np.float64)
    n_frames = 1 + (len(audio) - N_FFT) // HOP
    index = np.arange(n_frames)[:, None] * HOP + np.arange(N_FFT)[None, :]
    spectrum = np.abs(np.fft.rfft(audio[index] * np.hanning(N_FFT), axis=-1)) ** 2
    return 10.0 * np.log10(spectrum @ mel_filters().T + 1e-12)


def log_mel_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference in dB of the log-mel spectrograms, over bins within FLOOR_DB of either's peak.

    The signals are cut to the shorter length; both are clamped at (peak - FLOOR_DB) so near-silent bins
    (where any two renderings differ wildly in dB) do not dominate.
    """
    length = min(len(a), len(b))
    mel_a, mel_b = log_mel_db(a[:length]), log_mel_db(b[:length])
    floor = max(mel_a.max(), mel_b.max()) - FLOOR_DB
    return float(np.mean(np.abs(np.maximum(mel_a, floor) - np.maximum(mel_b, floor))))


def aligned_log_mel_distance(a: np.ndarray, b: np.ndarray) -> float:
    """log_mel_distance after aligning the frames with dynamic time warping (for renderings whose durations
    differ by a frame or two): the mean frame distance along the cheapest monotonic path."""
    mel_a, mel_b = log_mel_db(a), log_mel_db(b)
    floor = max(mel_a.max(), mel_b.max()) - FLOOR_DB
    mel_a, mel_b = np.maximum(mel_a, floor), np.maximum(mel_b, floor)
    cost = np.mean(np.abs(mel_a[:, None, :] - mel_b[None, :, :]), axis=-1)  # (Na, Nb)
    total = np.full((len(mel_a) + 1, len(mel_b) + 1), np.inf)
    steps = np.zeros_like(total)
    total[0, 0] = 0.0
    for i in range(1, len(mel_a) + 1):
        for j in range(1, len(mel_b) + 1):
            moves = ((i - 1, j - 1), (i - 1, j), (i, j - 1))
            k = int(np.argmin([total[m] for m in moves]))
            total[i, j] = total[moves[k]] + cost[i - 1, j - 1]
            steps[i, j] = steps[moves[k]] + 1
    return float(total[-1, -1] / steps[-1, -1])
