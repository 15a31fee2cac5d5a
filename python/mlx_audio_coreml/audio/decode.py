"""Audio in: read a file or take an array, and return mono float32 samples at the rate a model wants.

WAV, FLAC and OGG are read with soundfile; anything else goes through ffmpeg when it is on PATH
(decoded at the file's own rate, found with ffprobe). Other sample rates are converted with soxr
(a band-limited resampler, not linear interpolation). Reading goes block by block (stream.py), so
the peak is the result itself, not the file's raw channels at their own rate.
Every failure is a typed error from `errors`: AudioDecodeError, EmptyAudio, NonFiniteAudio,
ImplausibleSampleRate (a rate outside 1 kHz..384 kHz, from a header or from the caller).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .stream import DEFAULT_RATE, MAX_RATE, MIN_RATE, check_rate, open_stream

__all__ = ["DEFAULT_RATE", "MAX_RATE", "MIN_RATE", "decode_audio", "resample"]


def decode_audio(
    source: str | Path | np.ndarray | Any, sample_rate: int | None = None, *, target_rate: int = DEFAULT_RATE
) -> np.ndarray:
    """Return `source` as float32 mono samples at `target_rate`.

    `source` is a path, the bytes of an encoded file (or a binary file object), a numpy array or an
    MLX array. For arrays, `sample_rate` is their rate (None: 16000; anything outside 1000..384000
    is an ImplausibleSampleRate); a 2-D array is (samples, channels) when its last axis is the
    shorter one, otherwise (channels, samples), and channels are averaged.
    """
    return open_stream(source, sample_rate).read_all(target_rate)


def resample(samples: np.ndarray, rate_in: int, rate_out: int = DEFAULT_RATE) -> np.ndarray:
    """Convert mono float32 samples between rates with soxr's high-quality filter."""
    if rate_in == rate_out:
        return np.ascontiguousarray(samples, dtype=np.float32)
    import soxr

    check_rate("<array>", rate_in)
    out = soxr.resample(np.asarray(samples, dtype=np.float32), rate_in, rate_out, quality="HQ")
    return np.ascontiguousarray(out, dtype=np.float32)
