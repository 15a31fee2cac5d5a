"""Temperature fallback for one window, applied as openai-whisper and faster-whisper apply it.

Each rung of the ladder decodes the window once (beam search at temperature 0, the best of N
samples above it). A rung fails when its text loops (the compression ratio of the stripped text
is above the threshold) or the model was unsure (mean log-prob below the threshold), unless the
window looks like silence (no-speech probability above its threshold with that low log-prob: the
seek loop skips it). When every rung fails, the result kept is faster-whisper's choice: the
likeliest (mean log-prob) of the rungs that did not loop, or of all rungs if every one looped,
reported at the last temperature tried so the next window's prompt is reset as after any hot
decode. (openai-whisper keeps the last rung's result: the hottest sample, often nonsense.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

import numpy as np

from .decoding import DecodingResult


class FallbackRules(Protocol):
    """What the ladder reads from the options (read-only: TranscribeOptions is frozen and
    computes `temperatures`)."""

    @property
    def temperatures(self) -> tuple[float, ...]: ...
    @property
    def compression_ratio_threshold(self) -> float | None: ...
    @property
    def logprob_threshold(self) -> float | None: ...
    @property
    def no_speech_threshold(self) -> float | None: ...


def is_silence(result: DecodingResult, options: FallbackRules) -> bool:
    """Likely no speech and no confident text: the window is skipped, never retried."""
    if options.no_speech_threshold is None or options.logprob_threshold is None:
        return False
    return result.no_speech_prob > options.no_speech_threshold and result.avg_logprob < options.logprob_threshold


def loops(result: DecodingResult, options: FallbackRules) -> bool:
    threshold = options.compression_ratio_threshold
    return threshold is not None and result.compression_ratio > threshold


def needs_fallback(result: DecodingResult, options: FallbackRules) -> bool:
    """Retry hotter when the text loops or the model was unsure, unless the window is silence."""
    if is_silence(result, options):
        return False
    unsure = options.logprob_threshold is not None and result.avg_logprob < options.logprob_threshold
    return loops(result, options) or unsure


def decode_with_fallback(decode_at: Callable[[float, int], DecodingResult], options: FallbackRules) -> DecodingResult:
    """Decode at each temperature in turn (`decode_at(temperature, rung)`) until one passes."""
    tried: list[DecodingResult] = []
    for rung, temperature in enumerate(options.temperatures):
        result = decode_at(temperature, rung)
        if not needs_fallback(result, options):
            return result
        tried.append(result)
    not_looping = [r for r in tried if not loops(r, options)]
    best = max(not_looping or tried, key=lambda r: r.avg_logprob)
    return replace(best, temperature=options.temperatures[-1])


def rung_seed(seed: int, seek: int, rung: int) -> int:
    """The sampling seed for one rung of one window: fixed by (seed, seek, rung), so a window's
    samples do not depend on what was decoded before it."""
    return int(np.random.SeedSequence([seed, seek, rung]).generate_state(1, dtype=np.uint32)[0])
