"""`transcribe(..., vad_filter=True)`: keep only the speech VAD finds, joined end to end, and map
the times of the segments (and words) decoded from it back onto the original audio.

    speech = SpeechOnly.of(samples, VadOptions())   # speech.samples: the spans, concatenated
    for segment in speech.restore(segments): ...    # times on the original audio
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from ..errors import InvalidOption
from ..vad import SAMPLE_RATE, SpeechSpan, VadOptions, speech_timestamps
from .segments import Segment, Word


def vad_options(parameters: VadOptions | Mapping[str, Any] | None) -> VadOptions:
    """`vad_parameters` as given to transcribe: VadOptions, a dict of its fields, or None (defaults)."""
    if parameters is None:
        return VadOptions()
    if isinstance(parameters, VadOptions):
        return parameters.validated()
    known = {f.name for f in fields(VadOptions)}
    unknown = sorted(set(parameters) - known)
    if unknown:
        raise InvalidOption("vad_parameters", unknown[0], f"not a VAD option; known: {sorted(known)}")
    return VadOptions(**dict(parameters)).validated()


@dataclass(frozen=True)
class SpeechOnly:
    """The speech of one recording, joined, and where each piece came from."""

    samples: np.ndarray  # float32, 16 kHz: every span's samples, in order
    spans: tuple[SpeechSpan, ...]
    offsets: tuple[int, ...]  # where each span starts in `samples`

    @classmethod
    def of(cls, samples: np.ndarray, options: VadOptions | None = None) -> SpeechOnly:
        spans = tuple(speech_timestamps(samples, options))
        offsets = tuple(np.cumsum([0] + [s.end - s.start for s in spans[:-1]]).tolist()) if spans else ()
        joined = np.concatenate([samples[s.start : s.end] for s in spans]) if spans else np.zeros(0, np.float32)
        return cls(np.ascontiguousarray(joined, dtype=np.float32), spans, offsets)

    def original_time(self, t: float, *, is_end: bool = False) -> float:
        """Seconds in the joined speech -> seconds in the original audio. A time on a seam belongs
        to the span before it when it ends something (`is_end`), else to the span after it."""
        if not self.spans:
            return t
        sample = t * SAMPLE_RATE
        find = bisect.bisect_left if is_end else bisect.bisect_right
        k = max(find(self.offsets, sample) - 1, 0)
        return round(t + (self.spans[k].start - self.offsets[k]) / SAMPLE_RATE, 3)

    def restore(self, segments: Iterable[Segment]) -> Iterator[Segment]:
        """The segments with their times (and their words' times) on the original audio."""
        for segment in segments:
            words = None
            if segment.words is not None:
                words = tuple(self._word(w) for w in segment.words)
            yield replace(
                segment,
                start=self.original_time(segment.start),
                end=self.original_time(segment.end, is_end=True),
                words=words,
            )

    def _word(self, word: Word) -> Word:
        return replace(word, start=self.original_time(word.start), end=self.original_time(word.end, is_end=True))
