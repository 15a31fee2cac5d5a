"""Transcription options: every field with its default in one frozen dataclass (faster-whisper's
names), checked once when a transcription starts, and the decoding options each rung of the
temperature fallback ladder gets from them.

Defaults are faster-whisper's where the two references differ (beam search with 5 beams and
patience 1 at temperature 0, 5 samples per hotter rung), so the same audio gets comparable
decoding from either engine; `seed` makes the sampled rungs repeat exactly from run to run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

from ..errors import InvalidOption
from .decoding import MAX_PATIENCE, TASKS, DecodingOptions
from .timing import APPEND_PUNCTUATIONS, PREPEND_PUNCTUATIONS

MAX_BEAM_SIZE = 64  # beams (or samples) per window: past this only memory and time grow
MAX_TEMPERATURES = 100  # rungs on the fallback ladder
DEFAULT_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


@dataclass(frozen=True)
class TranscribeOptions:
    language: str | None = None  # code or English name; None detects it on the first window
    task: str = "transcribe"  # or "translate" (to English; multilingual models only)
    temperature: float | tuple[float, ...] = DEFAULT_TEMPERATURES  # tried in order until one passes
    beam_size: int | None = 5  # beams at temperature 0; 1 or None is greedy
    best_of: int | None = 5  # samples per window at temperature > 0; the likeliest is kept
    patience: float | None = 1.0  # beam search stops after round(beam_size * patience) finished beams
    length_penalty: float | None = None  # None: rank by mean log-prob; alpha: ((5 + n) / 6) ** alpha
    repetition_penalty: float = 1.0  # above 1: tokens already sampled in the window are less likely
    no_repeat_ngram_size: int = 0  # above 0: no n-gram of the window's tokens is sampled twice
    compression_ratio_threshold: float | None = 2.4  # above: looping text, retry hotter
    logprob_threshold: float | None = -1.0  # mean log-prob below: retry hotter
    no_speech_threshold: float | None = 0.6  # with a low log-prob: the window is silence, skipped
    condition_on_previous_text: bool = True  # prompt each window with the text before it
    prompt_reset_on_temperature: float = 0.5  # a window decoded hotter than this does not prompt the next
    initial_prompt: str | None = None  # text (vocabulary, style) before the first window
    word_timestamps: bool = False
    prepend_punctuations: str = PREPEND_PUNCTUATIONS  # attached to the following word
    append_punctuations: str = APPEND_PUNCTUATIONS  # attached to the preceding word
    suppress_tokens: str | tuple[int, ...] | None = "-1"
    suppress_blank: bool = True
    without_timestamps: bool = False
    max_initial_timestamp: float | None = 1.0
    hallucination_silence_threshold: float | None = (
        None  # seconds; skip silence around likely hallucinations (word_timestamps)
    )
    seed: int = 0  # sampling at temperature > 0 draws from it: the same input gives the same text
    vad_filter: bool = False  # decode only the speech Silero VAD finds; times stay on the original audio
    vad_parameters: Any = None  # vad.VadOptions or a dict of its fields; None: faster-whisper's defaults

    @property
    def temperatures(self) -> tuple[float, ...]:
        t = self.temperature
        return (float(t),) if isinstance(t, (int, float)) else tuple(float(x) for x in t)

    def decoding_options(
        self,
        temperature: float,
        language: str | None,
        prompt: Sequence[int] | None,
        seed: int | None = None,
    ) -> DecodingOptions:
        """The options for one decode of one window at one temperature of the fallback ladder."""
        beams = self.beam_size if temperature == 0 and self.beam_size and self.beam_size > 1 else None
        return DecodingOptions(
            task=self.task,
            language=language,
            temperature=temperature,
            best_of=self.best_of if temperature > 0 else None,
            beam_size=beams,
            patience=self.patience if beams else None,
            length_penalty=self.length_penalty,
            prompt=tuple(prompt) if prompt else None,
            suppress_tokens=self.suppress_tokens,
            suppress_blank=self.suppress_blank,
            without_timestamps=self.without_timestamps,
            max_initial_timestamp=self.max_initial_timestamp,
            repetition_penalty=self.repetition_penalty,
            no_repeat_ngram_size=self.no_repeat_ngram_size,
            seed=seed if temperature > 0 else None,
        )

    def validated(self) -> TranscribeOptions:
        """These options, or InvalidOption naming the first field out of its range."""
        _check_temperatures(self.temperature)
        if self.task not in TASKS:
            raise InvalidOption("task", self.task, f"choose one of {TASKS}")
        for name in ("beam_size", "best_of"):
            value = getattr(self, name)
            if value is not None and (not _is_int(value) or not 1 <= value <= MAX_BEAM_SIZE):
                raise InvalidOption(name, value, f"must be an integer from 1 to {MAX_BEAM_SIZE}")
        if self.patience is not None and not (_finite(self.patience) and 0 < self.patience <= MAX_PATIENCE):
            raise InvalidOption("patience", self.patience, f"must be in (0, {MAX_PATIENCE}]")
        if self.length_penalty is not None and not (_finite(self.length_penalty) and 0 <= self.length_penalty <= 1):
            raise InvalidOption("length_penalty", self.length_penalty, "must be between 0 and 1")
        if not (_finite(self.repetition_penalty) and self.repetition_penalty > 0):
            raise InvalidOption("repetition_penalty", self.repetition_penalty, "must be a finite number > 0")
        if not _is_int(self.no_repeat_ngram_size) or self.no_repeat_ngram_size < 0:
            raise InvalidOption("no_repeat_ngram_size", self.no_repeat_ngram_size, "must be an integer >= 0")
        self._check_thresholds()
        if not _is_int(self.seed) or self.seed < 0:
            raise InvalidOption("seed", self.seed, "must be an integer >= 0")
        return self

    def _check_thresholds(self) -> None:
        if self.compression_ratio_threshold is not None and not (
            _finite(self.compression_ratio_threshold) and self.compression_ratio_threshold > 0
        ):
            raise InvalidOption("compression_ratio_threshold", self.compression_ratio_threshold, "must be > 0 or None")
        if self.logprob_threshold is not None and not (_finite(self.logprob_threshold) and self.logprob_threshold <= 0):
            raise InvalidOption("logprob_threshold", self.logprob_threshold, "must be <= 0 or None")
        if self.no_speech_threshold is not None and not (
            _finite(self.no_speech_threshold) and 0 <= self.no_speech_threshold <= 1
        ):
            raise InvalidOption("no_speech_threshold", self.no_speech_threshold, "must be in [0, 1] or None")
        if not (_finite(self.prompt_reset_on_temperature) and self.prompt_reset_on_temperature >= 0):
            raise InvalidOption("prompt_reset_on_temperature", self.prompt_reset_on_temperature, "must be >= 0")
        silence = self.hallucination_silence_threshold
        if silence is not None:
            if not (_finite(silence) and silence >= 0):
                raise InvalidOption("hallucination_silence_threshold", silence, "must be seconds >= 0 or None")
            if not self.word_timestamps:  # it judges words: without their times it would do nothing
                raise InvalidOption("hallucination_silence_threshold", silence, "needs word_timestamps=True")


def fallback_temperatures(start: float, increment: float | None) -> tuple[float, ...]:
    """The ladder start, start + increment, ... up to 1.0 (openai-whisper's command line);
    increment None or 0 means no fallback. InvalidOption when it is not finite, is negative or
    would give more than MAX_TEMPERATURES rungs."""
    if not _finite(start) or start < 0:
        raise InvalidOption("temperature", start, "must be a finite number >= 0")
    if increment is None or increment == 0:
        return (float(start),)
    if not _finite(increment) or increment < 0:
        raise InvalidOption(
            "temperature_increment_on_fallback", increment, "must be a finite number > 0, or 0 for no fallback"
        )
    steps = int(round((1.0 - start) / increment)) if start < 1.0 else 0
    if steps + 1 > MAX_TEMPERATURES:
        raise InvalidOption(
            "temperature_increment_on_fallback", increment, f"gives more than {MAX_TEMPERATURES} temperatures"
        )
    return tuple(round(start + i * increment, 6) for i in range(steps + 1))


def merge_options(options: TranscribeOptions | None, overrides: dict[str, Any]) -> TranscribeOptions:
    """`options` (or the defaults) with keyword overrides, checked."""
    known = {f.name for f in fields(TranscribeOptions)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise InvalidOption(unknown[0], overrides[unknown[0]], f"not a transcription option; known: {sorted(known)}")
    return replace(options or TranscribeOptions(), **overrides).validated()


def _check_temperatures(given: object) -> None:
    try:
        temperatures = TranscribeOptions(temperature=given).temperatures  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidOption("temperature", given, "give a number or a sequence of numbers") from None
    if not temperatures or len(temperatures) > MAX_TEMPERATURES:
        raise InvalidOption("temperature", given, f"give 1 to {MAX_TEMPERATURES} values")
    if any(not _finite(t) or t < 0 for t in temperatures):
        raise InvalidOption("temperature", given, "every value must be a finite number >= 0")


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
