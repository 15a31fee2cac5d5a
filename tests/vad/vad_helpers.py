"""Real speech placed in a minute of noise and silence."""

from __future__ import annotations

import numpy as np


def speech_in_noise(speech: np.ndarray, at_s: float, total_s: float = 60.0, seed: int = 0) -> np.ndarray:
    """`total_s` seconds of white noise at about -40 dBFS with two stretches of digital silence
    (10-20 s and the last 10 s), and `speech` added at `at_s`."""
    rng = np.random.default_rng(seed)
    out = rng.standard_normal(int(total_s * 16000)).astype(np.float32) * 0.01
    out[10 * 16000 : 20 * 16000] = 0.0
    out[-10 * 16000 :] = 0.0
    start = int(at_s * 16000)
    out[start : start + speech.size] += speech
    return out
