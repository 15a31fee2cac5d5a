"""Real speech for the batched-transcription tests: clips joined end to end, and a word error rate."""

from __future__ import annotations

import re

import numpy as np
import pytest

from mlx_audio_coreml.whisper.audio import load_audio
from speech_data import JFK, JFK_TEXT, librivox_clips

GAP_S = 0.5  # silence after each clip in the joined audio


def joined_clips(passes: int = 1) -> tuple[np.ndarray, list[tuple[float, float, str]]]:
    """jfk.wav and the LibriVox clips end to end (GAP_S of silence after each), `passes` times:
    (16 kHz samples, [(start s, end s, reference text)] per clip)."""
    clips = [(JFK, JFK_TEXT), *librivox_clips()]
    if len(clips) < 4:
        pytest.skip("pocketsphinx-testdata's LibriVox clips are not installed")
    parts, spans, t = [], [], 0.0
    gap = np.zeros(int(16000 * GAP_S), np.float32)
    for _ in range(passes):
        for path, text in clips:
            audio = np.asarray(load_audio(str(path)), dtype=np.float32)
            spans.append((t, t + len(audio) / 16000, text))
            parts += [audio, gap]
            t += (len(audio) + len(gap)) / 16000
    return np.concatenate(parts), spans


def words(text: str) -> list[str]:
    text = text.lower().replace("mr.", "mister").replace("-", " ")
    return re.sub(r"[^\w\s']", " ", text).split()


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words, case and punctuation aside."""
    ref, hyp = words(reference), words(hypothesis)
    previous = list(range(len(hyp) + 1))
    for i, word in enumerate(ref, 1):
        current = [i] + [0] * len(hyp)
        for j, other in enumerate(hyp, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (word != other))
        previous = current
    return previous[-1] / max(len(ref), 1)
