"""Kokoro's synthesis steps, model-side: a `TextChunk` and a voice pack in, 24 kHz samples out.

One chunk is one model call, as in hexgrad's `KPipeline.infer`: the token ids between two pads
(id 0), the voice pack's style for that many tokens (`pack[len - 1]`), `KokoroModel.features`
(text encoder, prosody, alignment) and then the vocoder, whichever backend runs it. The pipeline
holds no per-call state, so one instance serves concurrent callers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

import mlx.core as mx
import numpy as np

from ..cancel import raise_dropped_interrupt
from ..errors import SpeedOutOfRange
from ..vocoders import VocoderFeatures
from .text import PAD_ID, TextChunk
from .voices import style_for

SAMPLE_RATE = 24000
# kokoro-onnx refuses speeds outside 0.5..2.0 (hexgrad sets no bound); beyond them durations
# collapse to one frame per token or stretch into drawl.
MIN_SPEED = 0.5
MAX_SPEED = 2.0


class FeatureModel(Protocol):
    """`KokoroModel.features`: everything before the vocoder."""

    def features(
        self, token_ids: mx.array, ref_style: mx.array, speed: float = 1.0
    ) -> tuple[VocoderFeatures, mx.array]: ...


class Vocoder(Protocol):
    """Features in, (1, samples) audio out: an AudioVocoder or the session's fallback switch."""

    def decode(self, features: VocoderFeatures) -> mx.array: ...


@dataclass(frozen=True)
class SpokenChunk:
    """One chunk's audio: `index` of `total` chunks, its text and phonemes, samples and durations."""

    index: int
    total: int
    chunk: TextChunk
    audio: np.ndarray  # float32 (samples,) at 24 kHz
    durations: np.ndarray  # int32 (tokens + 2,): frames per token, the pads included

    @property
    def duration_s(self) -> float:
        return len(self.audio) / SAMPLE_RATE


def check_speed(speed: float) -> float:
    """`speed` as a float when MIN_SPEED <= speed <= MAX_SPEED; `SpeedOutOfRange` otherwise."""
    value = float(speed)
    if not MIN_SPEED <= value <= MAX_SPEED:  # NaN fails too
        raise SpeedOutOfRange(value, MIN_SPEED, MAX_SPEED)
    return value


class KokoroPipeline:
    """The model and the vocoder behind one call per chunk."""

    def __init__(self, model: FeatureModel, vocoder: Vocoder) -> None:
        self.model = model
        self.vocoder = vocoder

    def speak(self, chunk: TextChunk, pack: np.ndarray, speed: float) -> tuple[np.ndarray, np.ndarray]:
        """(audio float32 (samples,), durations int32 (tokens + 2,)) for one chunk with a (510, 1, 256) pack."""
        ids = mx.array([[PAD_ID, *chunk.token_ids, PAD_ID]], dtype=mx.int32)  # (1, T + 2)
        style = mx.array(style_for(pack, len(chunk.token_ids)))  # (1, 256)
        features, durations = self.model.features(ids, style, speed)
        audio = self.vocoder.decode(features)  # (1, samples)
        mx.eval(audio, durations)
        return np.array(audio[0], dtype=np.float32), np.array(durations, dtype=np.int32)

    def run(self, chunks: Iterable[TextChunk], pack: np.ndarray, speed: float) -> Iterator[SpokenChunk]:
        """Each chunk spoken in order, yielded as soon as its audio exists."""
        todo = list(chunks)
        for index, chunk in enumerate(todo):
            audio, durations = self.speak(chunk, pack, speed)
            raise_dropped_interrupt()  # one that MLX's conversions dropped in the chunk (cancel.py)
            yield SpokenChunk(index, len(todo), chunk, audio, durations)
