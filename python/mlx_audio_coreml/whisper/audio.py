"""Whisper's audio constants, its 16 kHz view of `audio.decode`, and padding to a 30 s window."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..audio.decode import decode_audio
from ..audio.decode import resample as resample

SAMPLE_RATE = 16000
N_FFT = 400
HOP_LENGTH = 160
CHUNK_LENGTH = 30  # seconds per window
N_SAMPLES = CHUNK_LENGTH * SAMPLE_RATE  # 480000 samples per window
N_FRAMES = N_SAMPLES // HOP_LENGTH  # 3000 mel frames per window
N_SAMPLES_PER_TOKEN = HOP_LENGTH * 2  # 320: the encoder's second conv has stride 2
FRAMES_PER_SECOND = SAMPLE_RATE // HOP_LENGTH  # 100 mel frames per second (10 ms each)
TOKENS_PER_SECOND = SAMPLE_RATE // N_SAMPLES_PER_TOKEN  # 50 audio positions per second (20 ms each)


def load_audio(source: str | Path | np.ndarray | Any, sample_rate: int | None = None) -> np.ndarray:
    """`source` (a path, or an array at `sample_rate`, default 16000) as 16 kHz mono float32 samples."""
    return decode_audio(source, sample_rate, target_rate=SAMPLE_RATE)


def pad_or_trim(array: Any, length: int = N_SAMPLES, *, axis: int = -1) -> Any:
    """Zero-pad or cut `array` (numpy or MLX) along `axis` to exactly `length` entries."""
    size = array.shape[axis]
    if size > length:
        index = [slice(None)] * array.ndim
        index[axis] = slice(0, length)
        return array[tuple(index)]
    if size < length:
        widths = [(0, 0)] * array.ndim
        widths[axis] = (0, length - size)
        if isinstance(array, np.ndarray):
            return np.pad(array, widths)
        import mlx.core as mx

        return mx.pad(array, widths)
    return array
