"""Skipping likely hallucinations in silence (`hallucination_silence_threshold`), as
faster-whisper and openai-whisper do it with word timestamps.

A segment is anomalous when its first words are improbable, very short or very long. When such
a segment opens a window after more than `threshold` seconds of silence, the seek jumps over the
silence and the window is decoded again from there; when one sits between silences (or other
anomalies) it and everything after it in the window are dropped and the seek moves to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .segments import Segment, Word

# faster-whisper's list: a "word" that is one of these does not count toward the anomaly score
PUNCTUATION = "\"'“¿([{-\"'.。,，!！?？:：”)]}、"
MAX_WORDS_SCORED = 8


def word_anomaly_score(word: Word) -> float:
    """Improbable (p < 0.15), very short (< 0.133 s) or very long (> 2 s) words score."""
    duration = word.end - word.start
    score = 1.0 if word.probability < 0.15 else 0.0
    if duration < 0.133:
        score += (0.133 - duration) * 15
    if duration > 2.0:
        score += duration - 2.0
    return score


def is_segment_anomaly(segment: Segment | None) -> bool:
    if segment is None or not segment.words:
        return False
    words = [w for w in segment.words if w.word not in PUNCTUATION][:MAX_WORDS_SCORED]
    score = sum(word_anomaly_score(w) for w in words)
    return score >= 3 or score + 0.01 >= len(words)


def _next_with_words(segments: Sequence[Segment]) -> Segment | None:
    return next((s for s in segments if s.words), None)


@dataclass(frozen=True)
class HallucinationCut:
    """What to keep of a window, and where to seek next (seconds; None: where the window said).
    `redecode` comes with a `seek_to`."""

    segments: list[Segment]
    seek_to: float | None = None
    redecode: bool = False  # the whole window is dropped and decoded again from `seek_to`


def cut_hallucinations(
    segments: list[Segment],
    *,
    threshold: float,
    window_start: float,
    window_duration: float,
    content_duration: float,
    last_speech_end: float,
) -> HallucinationCut:
    """Apply the rule to one window's segments (absolute times, words timed)."""
    first = _next_with_words(segments)
    if first is not None and is_segment_anomaly(first):
        gap = first.start - window_start
        if gap > threshold:  # a hallucination opening the window after silence: skip the silence
            return HallucinationCut([], window_start + gap, redecode=True)
    window_end = window_start + 30.0  # faster-whisper measures to the end of the full 30 s window
    previous_end = last_speech_end
    for index, segment in enumerate(segments):
        if not segment.words:
            continue
        if is_segment_anomaly(segment):
            following = _next_with_words(segments[index + 1 :])
            next_start = (
                following.words[0].start
                if following is not None and following.words
                else window_start + window_duration
            )
            silence_before = (
                segment.start - previous_end > threshold
                or segment.start < threshold
                or segment.start - window_start < 2.0
            )
            silence_after = (
                next_start - segment.end > threshold or is_segment_anomaly(following) or window_end - segment.end < 2.0
            )
            if silence_before and silence_after:
                seek_to = max(window_start + 1, segment.start)
                if content_duration - segment.end < threshold:
                    seek_to = content_duration
                return HallucinationCut(segments[:index], seek_to)
        previous_end = segment.end
    return HallucinationCut(segments)
