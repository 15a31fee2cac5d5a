"""Batched long-form transcription: VAD cuts each recording's speech into chunks of at most 30 s,
the encoder and decoder run the chunks of one or many recordings in batches, and each chunk's
segments (and words) are mapped back onto its recording's time line.

    results = BatchedTranscriber(transcriber).transcribe_many(["a.wav", "b.wav"], batch_size=8)
    for segments, info in results: ...
    session.transcribe("long.wav", batch_size=8)        # the same, one recording (session hook)

As faster-whisper's `BatchedInferencePipeline`: chunks are independent (a chunk's prompt is the
initial prompt, never the text before it: the chunks before it are decoded in the same batch),
a chunk joins the speech spans of a stretch of audio, dropping the silence between them, and
the VAD defaults are faster-whisper's batched ones (spans at most 30 s, silences of 160 ms split).
Each chunk is decoded at temperature 0 in the batch; a chunk whose text loops or is unlikely is
decoded again alone on the rest of the temperature ladder (fallback.py). Chunks never overlap
and are cut at pauses; a decode that closes before its chunk's speech ends (Whisper does, near a
window's end) has its tail decoded as one more chunk, as the seek loop's next window would. So no
word is heard twice or lost at a seam (tests/whisper/batched).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import mlx.core as mx
import numpy as np

from ..audio.stream import open_stream
from ..errors import InvalidOption
from ..vad import SpeechSpan, VadOptions, speech_timestamps
from .audio import FRAMES_PER_SECOND, N_FRAMES, N_SAMPLES, SAMPLE_RATE
from .batch_decode import decode_rows
from .decoding import DecodingResult, DecodingTask, detect_language, sot_sequence
from .fallback import decode_with_fallback, is_silence, rung_seed
from .mel import log_mel_spectrogram
from .segments import Segment, TokenSpan, TranscriptionInfo, cut_window
from .timing import attach_words, find_alignment
from .transcribe_options import TranscribeOptions, merge_options
from .vad_filter import SpeechOnly

CHUNK_SECONDS = 30  # one encoder window
TAIL_S = 1.0  # speech left after a chunk's last timestamp that is decoded again
BATCH_VAD = VadOptions(
    max_speech_duration_s=CHUNK_SECONDS, min_silence_duration_ms=160
)  # faster-whisper's batched defaults
# On a CUDA GPU, the next batch's mel and encoder run on a second stream while this batch decodes
# (the encoder's large products beside the decoder's small kernels). Off: no gain measured on an H100
# (bench/results/gpu_batched_h100_s5.md: 0.670 s vs 0.661, 48 chunks at batch 24, the decode device-bound).
ENCODE_AHEAD = False
_SIDE: list[mx.Stream] = []


def ahead_stream() -> mx.Stream | None:
    """The second stream for encoding ahead (made once), or None: off, or not a CUDA GPU."""
    on_cuda = mx.default_device().type == mx.DeviceType.gpu and mx.cuda.is_available()
    if not (ENCODE_AHEAD and on_cuda):
        return None
    if not _SIDE:
        _SIDE.append(mx.new_stream(mx.gpu))
    return _SIDE[0]


def batch_vad_options(parameters: VadOptions | dict[str, Any] | None) -> VadOptions:
    """The VAD options of batched transcription: BATCH_VAD with the caller's fields over it; spans
    never exceed one window."""
    if parameters is None:
        return BATCH_VAD
    given = (
        parameters
        if isinstance(parameters, dict)
        else {f.name: getattr(parameters, f.name) for f in fields(VadOptions)}
    )
    known = {f.name for f in fields(VadOptions)}
    unknown = sorted(set(given) - known)
    if unknown:
        raise InvalidOption("vad_parameters", unknown[0], f"not a VAD option; known: {sorted(known)}")
    merged = replace(BATCH_VAD, **given)
    return replace(merged, max_speech_duration_s=min(merged.max_speech_duration_s, CHUNK_SECONDS)).validated()


def speech_chunks(samples: np.ndarray, options: VadOptions = BATCH_VAD) -> list[SpeechOnly]:
    """The recording's speech as chunks of at most 30 s, each joining consecutive VAD spans."""
    limit = CHUNK_SECONDS * SAMPLE_RATE
    spans: list[SpeechSpan] = []
    for span in speech_timestamps(samples, options):  # a span longer than a window (padding) is cut
        spans += [SpeechSpan(s, min(s + limit, span.end)) for s in range(span.start, span.end, limit)]
    groups: list[list[SpeechSpan]] = []
    length = 0
    for span in spans:
        if not groups or length + span.end - span.start > limit:
            groups.append([])
            length = 0
        groups[-1].append(span)
        length += span.end - span.start
    chunks = []
    for group in groups:
        offsets = tuple(np.cumsum([0] + [s.end - s.start for s in group[:-1]]).tolist())
        joined = np.concatenate([samples[s.start : s.end] for s in group]).astype(np.float32)
        chunks.append(SpeechOnly(joined, tuple(group), offsets))
    return chunks


def chunk_spans(tokens: Sequence[int], timestamp_begin: int, n_frames: int) -> list[TokenSpan]:
    """A chunk's tokens as segments: those the timestamp pairs close, then any text after the last
    pair up to the chunk's end (nothing comes after a chunk: its tail is kept, not decoded again)."""
    cut = cut_window(tokens, timestamp_begin, n_frames)
    spans = list(cut.spans)
    rest = tuple(tokens[len(cut.consumed) :])
    if any(t < timestamp_begin for t in rest):
        first_ts = rest[0] >= timestamp_begin
        start = (rest[0] - timestamp_begin) * 0.02 if first_ts else (spans[-1].end if spans else 0.0)
        spans.append(TokenSpan(start, max(n_frames / FRAMES_PER_SECOND, start), rest))
    return spans


def cut_off_tail(chunk: SpeechOnly, tokens: Sequence[int], timestamp_begin: int, vad: VadOptions) -> SpeechOnly | None:
    """The chunk's speech after its decode's last timestamp, when the VAD heard over TAIL_S more
    (Whisper sometimes closes a window early, as the seek loop's next window would catch: the
    tail is decoded as a chunk of its own); None when the decode reached the speech's end."""
    stamps = [t for t in tokens if t >= timestamp_begin]
    if not stamps:
        return None  # without timestamps: one segment for the whole chunk
    heard = (max(stamps) - timestamp_begin) * 0.02
    speech_end = len(chunk.samples) / SAMPLE_RATE - vad.speech_pad_ms / 1000
    if speech_end - heard < TAIL_S:
        return None
    start = round(heard * SAMPLE_RATE)
    spans, offsets = [], []
    for span, offset in zip(chunk.spans, chunk.offsets):
        if offset + span.end - span.start <= start:
            continue
        skip = max(start - offset, 0)
        spans.append(SpeechSpan(span.start + skip, span.end))
        offsets.append(offset + skip - start)
    return SpeechOnly(chunk.samples[start:], tuple(spans), tuple(offsets))


@dataclass
class _Recording:
    """One input: its chunks, duration, language and, once decoded, its segments."""

    chunks: list[SpeechOnly]
    duration: float
    language: str = "en"
    language_probability: float = 1.0
    all_language_probs: tuple[tuple[str, float], ...] | None = None


@dataclass(frozen=True)
class _Row:
    recording: int
    chunk: int


class BatchedTranscriber:
    """Chunks of many recordings through one `transcribe.Transcriber`'s model, `batch_size` at a time."""

    def __init__(self, transcriber: Any) -> None:
        self.transcriber = transcriber
        self.model = transcriber.model
        self.n_mels: int = transcriber.dims.n_mels

    def transcribe_many(
        self,
        audios: Sequence[Any],
        options: TranscribeOptions | None = None,
        *,
        batch_size: int = 8,
        sample_rate: int | None = None,
        **overrides: Any,
    ) -> list[tuple[list[Segment], TranscriptionInfo]]:
        """(segments, info) per recording of `audios` (paths or sample arrays at `sample_rate`)."""
        if batch_size < 1:
            raise InvalidOption("batch_size", batch_size, "must be >= 1")
        checked: TranscribeOptions = self.transcriber._checked(
            merge_options(options, overrides)
        )  # language names, task, ladder
        vad = batch_vad_options(checked.vad_parameters)
        recordings = []
        for audio in audios:
            samples = open_stream(audio, sample_rate).read_all(SAMPLE_RATE)
            recordings.append(_Recording(speech_chunks(samples, vad), len(samples) / SAMPLE_RATE))
        queue = [_Row(r, c) for r, rec in enumerate(recordings) for c in range(len(rec.chunks))]
        tails: set[_Row] = set()
        decoded: dict[_Row, list[Segment]] = {}
        ahead: tuple[list[_Row], mx.array] | None = None
        while queue:
            batch, queue = queue[:batch_size], queue[batch_size:]
            features = ahead[1] if ahead is not None and ahead[0] == batch else self._features(batch, recordings)
            ahead = self._encode_ahead(queue[:batch_size], recordings)  # the next batch, unless tails join it
            for row, (segments, tail) in self._decode_batch(batch, recordings, features, checked, vad).items():
                decoded[row] = segments
                if tail is not None and row not in tails:  # one more pass over a cut-off tail, not more
                    chunks = recordings[row.recording].chunks
                    chunks.append(tail)
                    tails.add(_Row(row.recording, len(chunks) - 1))
                    queue.append(_Row(row.recording, len(chunks) - 1))
        results = []
        for r, rec in enumerate(recordings):
            segments = sorted((s for c in range(len(rec.chunks)) for s in decoded[_Row(r, c)]), key=lambda s: s.start)
            segments = [replace(s, id=i) for i, s in enumerate(segments)]
            info = TranscriptionInfo(
                rec.language, rec.language_probability, rec.duration, checked, rec.all_language_probs
            )
            results.append((segments, info))
        return results

    def _features(self, batch: list[_Row], recordings: list[_Recording]) -> mx.array:
        """The rows' encoder output (B, n_ctx, D), not yet evaluated."""
        chunks = [recordings[row.recording].chunks[row.chunk] for row in batch]
        mels = mx.stack([log_mel_spectrogram(c.samples, self.n_mels, padding=N_SAMPLES)[:, :N_FRAMES] for c in chunks])
        return self.transcriber.encoder.encode(mels)

    def _encode_ahead(self, batch: list[_Row], recordings: list[_Recording]) -> tuple[list[_Row], mx.array] | None:
        """With a second stream (`ahead_stream`): the rows' mel and encoder queued there now, so they
        run beside this batch's decode; else None (they are made when their batch comes)."""
        side = ahead_stream()
        if side is None or not batch:
            return None
        with mx.stream(side):
            features = self._features(batch, recordings)
            mx.async_eval(features)
        return batch, features

    def _decode_batch(
        self,
        batch: list[_Row],
        recordings: list[_Recording],
        features: mx.array,
        options: TranscribeOptions,
        vad: VadOptions,
    ) -> dict[_Row, tuple[list[Segment], SpeechOnly | None]]:
        """Each row's segments (`features`: their encoder output) and, when its decode stopped well
        before its speech did, the cut-off tail of its chunk (to be decoded as one more chunk)."""
        chunks = [recordings[row.recording].chunks[row.chunk] for row in batch]
        self._detect_languages(batch, recordings, features, options)
        languages = [recordings[row.recording].language for row in batch]
        tokenizer = self.transcriber.tokenizer(languages[0] if self.transcriber.multilingual else None, options.task)
        prompt = tuple(tokenizer.encode(" " + options.initial_prompt.strip())) if options.initial_prompt else ()
        first = self._first_rung(features, tokenizer, options, languages, prompt)
        out = {}
        for i, row in enumerate(batch):
            feature = features[i : i + 1]
            result = self._with_fallback(
                feature, first[i] if first else None, tokenizer, options, languages[i], prompt, row
            )
            segments = self._segments(result, chunks[i], feature, tokenizer, options, languages[i])
            tail = (
                None
                if is_silence(result, options)
                else cut_off_tail(chunks[i], result.tokens, tokenizer.timestamp_begin, vad)
            )
            out[row] = (segments, tail)
        return out

    def _detect_languages(
        self, batch: list[_Row], recordings: list[_Recording], features: mx.array, options: TranscribeOptions
    ) -> None:
        """A recording's language is detected on its first chunk (as the sequential path does on its first window)."""
        if not self.transcriber.multilingual or options.language is not None:
            for row in batch:
                recordings[row.recording].language = options.language or "en"
            return
        firsts = [i for i, row in enumerate(batch) if row.chunk == 0]
        if not firsts:
            return
        tokenizer = self.transcriber.tokenizer(None, options.task)
        for i, probs in zip(firsts, detect_language(self.model, features[mx.array(firsts)], tokenizer)):
            ranked = sorted(probs.items(), key=lambda kv: kv[1], reverse=True)
            rec = recordings[batch[i].recording]
            rec.language, rec.language_probability = ranked[0]
            rec.all_language_probs = tuple(ranked)

    def _first_rung(
        self,
        features: mx.array,
        tokenizer: Any,
        options: TranscribeOptions,
        languages: list[str],
        prompt: tuple[int, ...],
    ) -> list[DecodingResult] | None:
        """The whole batch decoded at temperature 0 (None when the ladder starts hotter)."""
        if options.temperatures[0] != 0:
            return None
        decoding = options.decoding_options(0.0, None, None)  # languages go per row (token ids are shared)
        per_row = [lang if self.transcriber.multilingual else None for lang in languages]
        return decode_rows(
            self.model,
            tokenizer,
            features,
            decoding,
            [prompt] * features.shape[0],
            self.transcriber.config,
            languages=per_row,
        )

    def _with_fallback(
        self,
        feature: mx.array,
        first: DecodingResult | None,
        tokenizer: Any,
        options: TranscribeOptions,
        language: str,
        prompt: tuple[int, ...],
        row: _Row,
    ) -> DecodingResult:
        multilingual = self.transcriber.multilingual

        def decode_at(temperature: float, rung: int) -> DecodingResult:
            if rung == 0 and first is not None:
                return first
            seed = rung_seed(options.seed, row.recording * 1_000_003 + row.chunk, rung)
            decoding = options.decoding_options(temperature, language if multilingual else None, prompt, seed)
            return DecodingTask(self.model, tokenizer, decoding, self.transcriber.config).run(feature)[0]

        return decode_with_fallback(decode_at, options)

    def _segments(
        self,
        result: DecodingResult,
        chunk: SpeechOnly,
        feature: mx.array,
        tokenizer: Any,
        options: TranscribeOptions,
        language: str,
    ) -> list[Segment]:
        """The chunk's segments (and words) on its recording's time line."""
        if is_silence(result, options):
            return []
        n_frames = min(len(chunk.samples) * FRAMES_PER_SECOND // SAMPLE_RATE, N_FRAMES)
        seek = round(chunk.spans[0].start * FRAMES_PER_SECOND / SAMPLE_RATE)
        eot = tokenizer.eot
        segments = []
        for span in chunk_spans(result.tokens, tokenizer.timestamp_begin, n_frames):
            text = tokenizer.decode([t for t in span.tokens if t < eot])
            if text.strip() and span.end >= span.start:
                segments.append(Segment(
                    id=len(segments), seek=seek, start=round(span.start, 3), end=round(span.end, 3), text=text,
                    tokens=span.tokens, temperature=result.temperature, avg_logprob=result.avg_logprob,
                    compression_ratio=result.compression_ratio, no_speech_prob=result.no_speech_prob,
                ))  # fmt: skip
        if options.word_timestamps and segments:
            segments = self._align(segments, feature, tokenizer, options, language, n_frames)
        return list(chunk.restore(segments))

    def _align(
        self,
        segments: list[Segment],
        feature: mx.array,
        tokenizer: Any,
        options: TranscribeOptions,
        language: str,
        n_frames: int,
    ) -> list[Segment]:
        start_tokens = sot_sequence(tokenizer, self.transcriber.multilingual, language, options.task)
        text_tokens = [t for s in segments for t in s.tokens if t < tokenizer.eot]
        alignment = find_alignment(self.model, tokenizer, start_tokens, text_tokens, feature, n_frames)
        return attach_words(
            segments,
            alignment,
            0.0,
            0.0,
            tokenizer.timestamp_begin,
            options.prepend_punctuations,
            options.append_punctuations,
        )


def transcribe_files(
    session: Any,
    audios: Sequence[Any],
    options: TranscribeOptions | None = None,
    *,
    batch_size: int = 8,
    sample_rate: int | None = None,
    **overrides: Any,
) -> list[tuple[list[Segment], TranscriptionInfo]]:
    """Many recordings through one `WhisperSession`, their chunks batched across recordings:
    `[(segments, info), ...]` in the order of `audios`."""
    from .transcribe import Transcriber

    session.wait_ready()
    batched = BatchedTranscriber(Transcriber(session.bundle, session.encoder))
    return batched.transcribe_many(audios, options, batch_size=batch_size, sample_rate=sample_rate, **overrides)
