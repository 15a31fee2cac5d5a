"""Transcribe audio of any length: seek through 30 s windows, decode each with temperature fallback,
cut it into segments at its timestamp tokens, and yield segments as they are decoded.

`Transcriber` owns the model-facing parts (mel, encoder, decoding, word alignment); `SeekLoop`
owns the walk through the audio and knows nothing of models: it asks a window decoder for tokens,
so tests can drive it with chosen token streams.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import mlx.core as mx

from ..audio.stream import open_stream
from ..cancel import raise_dropped_interrupt
from ..cpu.teardown import release_streams_at_thread_exit
from ..errors import InvalidOption
from .audio import FRAMES_PER_SECOND, N_FRAMES, SAMPLE_RATE
from .decoding import DecodingResult, DecodingTask, detect_language, sot_sequence
from .fallback import decode_with_fallback, rung_seed
from .hallucination import HallucinationCut, cut_hallucinations
from .mel_windows import MelWindows
from .segments import Segment, TokenSpan, TranscriptionInfo, cut_window
from .timing import attach_words, find_alignment
from .tokenizer import LANGUAGES, TO_LANGUAGE_CODE, get_tokenizer
from .transcribe_options import TranscribeOptions, merge_options
from .vad_filter import SpeechOnly, vad_options

ProgressCallback = Callable[[float, float], None]  # (seconds done, seconds total)


@dataclass(frozen=True)
class WindowDecode:
    """One window's accepted decode and, for word alignment, its audio features."""

    result: DecodingResult
    audio_features: Any = None


class WindowDecoder(Protocol):
    def __call__(self, seek: int, n_frames: int, prompt: list[int]) -> WindowDecode: ...


class WordAligner(Protocol):
    def __call__(
        self,
        segments: list[Segment],
        window: WindowDecode,
        seek: int,
        n_frames: int,
        last_speech_end: float,
    ) -> list[Segment]: ...


class SeekLoop:
    """Walks the audio window by window; yields each window's segments, never repeating or
    skipping speech at the seams (a cut-off last segment is decoded again in the next window)."""

    def __init__(
        self,
        options: TranscribeOptions,
        tokenizer: Any,
        content_frames: int,
        initial_prompt: Sequence[int] = (),
    ) -> None:
        self.options = options
        self.tokenizer = tokenizer
        self.content_frames = content_frames
        self.all_tokens: list[int] = list(initial_prompt)
        self.prompt_start = 0  # prompts take all_tokens[prompt_start:]

    def run(
        self,
        decode_window: WindowDecoder,
        align: WordAligner | None = None,
        progress: ProgressCallback | None = None,
    ) -> Iterator[Segment]:
        seek, next_id, last_speech_end = 0, 0, 0.0
        total = self.content_frames / FRAMES_PER_SECOND
        while seek < self.content_frames:
            n_frames = min(N_FRAMES, self.content_frames - seek)
            window = decode_window(seek, n_frames, self.all_tokens[self.prompt_start :])
            raise_dropped_interrupt()  # one that a C extension dropped during the window (cancel.py)
            advance, segments = self._segments(window, seek, n_frames, next_id, align, last_speech_end)
            yield from segments
            if segments:
                next_id = segments[-1].id + 1
                last_speech_end = segments[-1].end
            seek += advance
            if progress is not None:
                progress(min(seek, self.content_frames) / FRAMES_PER_SECOND, total)

    def _segments(
        self,
        window: WindowDecode,
        seek: int,
        n_frames: int,
        first_id: int,
        align: WordAligner | None,
        last_speech_end: float,
    ) -> tuple[int, list[Segment]]:
        result, options = window.result, self.options
        if self._is_silence(result):
            return n_frames, []
        cut = cut_window(list(result.tokens), self.tokenizer.timestamp_begin, n_frames)
        window_start = seek / FRAMES_PER_SECOND
        segments = self._make_segments(result, cut.spans, seek, first_id)
        advance = cut.advance_frames
        if align is not None and segments:
            segments = align(segments, window, seek, n_frames, last_speech_end)
            last_word_end = max((w.end for s in segments for w in s.words or ()), default=0.0)
            if not cut.ended_on_single_timestamp and last_word_end > window_start:
                # resume right after the last word heard rather than at the segment's timestamp
                advance = max(min(round(last_word_end * FRAMES_PER_SECOND) - seek, n_frames), 1)
        consumed = cut.consumed
        if align is not None and segments and options.hallucination_silence_threshold is not None:
            hallucination = self._cut_hallucinations(segments, seek, n_frames, last_speech_end)
            if hallucination.seek_to is not None:  # always set with `redecode`
                advance = max(round(hallucination.seek_to * FRAMES_PER_SECOND) - seek, 1)
                if hallucination.redecode:  # nothing kept: decode again after the silence
                    return advance, []
                segments = hallucination.segments
                consumed = tuple(t for s in segments for t in s.tokens)
        self.all_tokens.extend(consumed)
        if not options.condition_on_previous_text or result.temperature > options.prompt_reset_on_temperature:
            self.prompt_start = len(self.all_tokens)
        return advance, segments

    def _cut_hallucinations(
        self, segments: list[Segment], seek: int, n_frames: int, last_speech_end: float
    ) -> HallucinationCut:
        threshold = self.options.hallucination_silence_threshold
        assert threshold is not None
        return cut_hallucinations(
            segments, threshold=threshold, window_start=seek / FRAMES_PER_SECOND,
            window_duration=n_frames / FRAMES_PER_SECOND, content_duration=self.content_frames / FRAMES_PER_SECOND,
            last_speech_end=last_speech_end,
        )  # fmt: skip

    def _make_segments(
        self,
        result: DecodingResult,
        spans: Sequence[TokenSpan],
        seek: int,
        first_id: int,
    ) -> list[Segment]:
        """Segments (absolute times, consecutive ids) for the spans that hold some text."""
        window_start = seek / FRAMES_PER_SECOND
        eot = self.tokenizer.eot  # text only: a sampled language or task token is not text (faster-whisper)
        texts = [self.tokenizer.decode([t for t in span.tokens if t < eot]) for span in spans]
        kept = [(span, text) for span, text in zip(spans, texts) if text.strip() and span.end >= span.start]
        return [
            Segment(
                id=first_id + i,
                seek=seek,
                start=round(window_start + span.start, 3),
                end=round(window_start + span.end, 3),
                text=text,
                tokens=span.tokens,
                temperature=result.temperature,
                avg_logprob=result.avg_logprob,
                compression_ratio=result.compression_ratio,
                no_speech_prob=result.no_speech_prob,
            )  # fmt: skip
            for i, (span, text) in enumerate(kept)
        ]

    def _is_silence(self, result: DecodingResult) -> bool:
        options = self.options
        if options.no_speech_threshold is None or result.no_speech_prob <= options.no_speech_threshold:
            return False
        return options.logprob_threshold is None or result.avg_logprob <= options.logprob_threshold


class Transcriber:
    """Audio in, segments out: `segments, info = Transcriber(bundle, encoder).transcribe(audio)`."""

    def __init__(self, bundle: Any, encoder: Any) -> None:
        self.bundle = bundle
        self.model = bundle.model
        self.dims = bundle.model.dims
        self.config: dict = dict(getattr(bundle, "config", None) or {})
        self.encoder = encoder
        self.multilingual = bool(getattr(self.model, "is_multilingual", False))

    def tokenizer(self, language: str | None, task: str) -> Any:
        return get_tokenizer(self.bundle, multilingual=self.multilingual, language=language, task=task)

    def transcribe(
        self,
        audio: Any,
        *,
        options: TranscribeOptions | None = None,
        progress: ProgressCallback | None = None,
        sample_rate: int | None = None,
        **overrides: Any,
    ) -> tuple[Iterator[Segment], TranscriptionInfo]:
        """Start transcribing `audio`: a path, or samples as a numpy or MLX array at `sample_rate`
        (default 16000; other rates are resampled). Keyword overrides change `options` fields.

        Bad input raises here (typed errors); language detection, if asked, runs here too.
        Segments are decoded lazily, window by window, as the iterator is read.
        """
        options = self._checked(merge_options(options, overrides))
        release_streams_at_thread_exit()  # this caller's thread gets MLX streams: clear them at its end
        mel, duration, speech = self._mel_windows(audio, sample_rate, options)
        run = WindowDecoding(self, options, mel)
        language, probability, all_probs = options.language or "en", 1.0, None
        if self.multilingual and options.language is None:
            probs = detect_language(self.model, run.features(0), self.tokenizer(None, options.task))[0]
            ranked = sorted(probs.items(), key=lambda kv: kv[1], reverse=True)
            (language, probability), all_probs = ranked[0], tuple(ranked)
        run.set_language(language)
        info = TranscriptionInfo(language, probability, duration, options, all_probs)
        segments = self._segments(run, progress)
        return (speech.restore(segments) if speech is not None else segments), info

    def _mel_windows(
        self, audio: Any, sample_rate: int | None, options: TranscribeOptions
    ) -> tuple[MelWindows, float, SpeechOnly | None]:
        """The audio's mel windows (read in bounded memory: mel_windows.py), its duration and, with
        the VAD filter, the speech kept (which needs the samples whole)."""
        stream = open_stream(audio, sample_rate)
        if not options.vad_filter:
            mel = MelWindows.measure(lambda: stream.blocks(SAMPLE_RATE), self.dims.n_mels, stream.name)
            return mel, mel.total_samples / SAMPLE_RATE, None
        samples = stream.read_all(SAMPLE_RATE)
        speech = SpeechOnly.of(samples, vad_options(options.vad_parameters))
        kept = speech.samples  # may be empty: then no window is decoded
        mel = (
            MelWindows.measure(lambda: iter([kept]), self.dims.n_mels)
            if kept.size
            else MelWindows.empty(self.dims.n_mels)
        )
        return mel, len(samples) / SAMPLE_RATE, speech

    def _segments(self, run: WindowDecoding, progress: ProgressCallback | None) -> Iterator[Segment]:
        options, tokenizer = run.options, run.tokenizer
        prompt = tokenizer.encode(" " + options.initial_prompt.strip()) if options.initial_prompt else []
        loop = SeekLoop(options, tokenizer, run.content_frames, prompt)
        yield from loop.run(run.decode_window, run.align if options.word_timestamps else None, progress)

    def _checked(self, options: TranscribeOptions) -> TranscribeOptions:
        language = options.language
        if language is not None:
            key = language.lower()
            code = key if key in LANGUAGES else TO_LANGUAGE_CODE.get(key)
            if code is None:
                raise InvalidOption("language", language, "not a known language code or name")
            if not self.multilingual and code != "en":
                raise InvalidOption("language", language, "this model is English-only")
            options = replace(options, language=code)
        if options.task not in ("transcribe", "translate"):
            raise InvalidOption("task", options.task, "choose 'transcribe' or 'translate'")
        if options.task == "translate" and not self.multilingual:
            raise InvalidOption("task", options.task, "this model is English-only and cannot translate")
        for temperature in options.temperatures:  # now, rather than when the first window decodes
            options.decoding_options(temperature, None, None).validated()
        return options


class WindowDecoding:
    """One transcription's model work per window: features (encoded once per seek), decoding with
    temperature fallback, and word alignment. `SeekLoop` calls it; it never decides where to seek."""

    def __init__(self, transcriber: Transcriber, options: TranscribeOptions, mel: MelWindows) -> None:
        self.transcriber = transcriber
        self.options = options
        self.mel = mel  # each 30 s window's log-mel, computed when the seek loop reaches it
        self.content_frames = mel.content_frames
        self.language = options.language or "en"
        self.tokenizer: Any = None
        self._features: dict[int, mx.array] = {}

    def set_language(self, language: str) -> None:
        transcriber = self.transcriber
        self.language = language
        self.tokenizer = transcriber.tokenizer(language if transcriber.multilingual else None, self.options.task)

    def features(self, seek: int) -> mx.array:
        """Encoder output (1, n_ctx, D) for the window at `seek`, computed once."""
        if seek not in self._features:
            n_frames = min(N_FRAMES, self.content_frames - seek)
            window = self.mel.window(seek, n_frames)  # (n_mels, 3000): zeros past the end
            self._features = {seek: self.transcriber.encoder.encode(window[None])}  # keep only the latest
        return self._features[seek]

    def decode_window(self, seek: int, n_frames: int, prompt: list[int]) -> WindowDecode:
        features = self.features(seek)
        return WindowDecode(self.decode_with_fallback(features, prompt, seek), features)

    def decode_with_fallback(self, features: mx.array, prompt: Sequence[int], seek: int = 0) -> DecodingResult:
        """Decode at each temperature in turn until the text neither loops nor looks unlikely
        (fallback.py); each sampled rung draws from its own seed, fixed by the options' seed."""
        transcriber, options = self.transcriber, self.options
        language = self.language if transcriber.multilingual else None

        def decode_at(temperature: float, rung: int) -> DecodingResult:
            seed = rung_seed(options.seed, seek, rung)
            decode_options = options.decoding_options(temperature, language, prompt, seed)
            return DecodingTask(transcriber.model, self.tokenizer, decode_options, transcriber.config).run(features)[0]

        return decode_with_fallback(decode_at, options)

    def align(
        self,
        segments: list[Segment],
        window: WindowDecode,
        seek: int,
        n_frames: int,
        last_speech_end: float,
    ) -> list[Segment]:
        """The window's segments with their words timed (see timing.py)."""
        model, tokenizer, options = self.transcriber.model, self.tokenizer, self.options
        start_tokens = sot_sequence(tokenizer, self.transcriber.multilingual, self.language, options.task)
        ts_begin = tokenizer.timestamp_begin
        text_tokens = [t for s in segments for t in s.tokens if t < tokenizer.eot]  # as faster-whisper aligns
        alignment = find_alignment(model, tokenizer, start_tokens, text_tokens, window.audio_features, n_frames)
        return attach_words(
            segments, alignment, seek / FRAMES_PER_SECOND, last_speech_end, ts_begin,
            options.prepend_punctuations, options.append_punctuations,
        )  # fmt: skip
