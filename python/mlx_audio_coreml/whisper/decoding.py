"""Decode a batch of 30 s windows into tokens: options, results, language detection, and the task
that assembles prompt, logit filters and search strategy (greedy or sampling in `sampling.py`,
beam search in `beam.py`).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

import mlx.core as mx
import numpy as np

from ..errors import InvalidOption
from . import gpu_loop, gpu_step, host_decoder
from .beam import BeamSearch
from .logit_filters import (
    ApplyTimestampRules,
    LogitFilter,
    NoRepeatNgram,
    RepetitionPenalty,
    SuppressBlank,
    SuppressTokens,
)
from .sampling import repeat_rows
from .segments import TIME_PRECISION

TASKS = ("transcribe", "translate")
MAX_PATIENCE = 10.0  # finished beams to wait for, in beam sizes: more only spends time


@dataclass(frozen=True)
class DecodingOptions:
    task: str = "transcribe"  # or "translate": any language to English text
    language: str | None = None  # a code such as "en"; None detects it (multilingual models)
    temperature: float = 0.0  # 0: greedy or beam search; above 0: sampling
    sample_len: int | None = None  # most tokens sampled per window; None: n_text_ctx // 2
    best_of: int | None = None  # samples drawn at temperature > 0; the likeliest is kept
    beam_size: int | None = None  # beams at temperature 0; None is greedy
    patience: float | None = None  # finished beams to collect, in units of beam_size (default 1)
    length_penalty: float | None = None  # None: rank by mean log-prob; alpha: ((5 + n) / 6) ** alpha
    prompt: str | tuple[int, ...] | None = None  # earlier text, given after <|startofprev|>
    prefix: str | tuple[int, ...] | None = None  # forced start of this window's text
    suppress_tokens: str | tuple[int, ...] | None = "-1"  # "-1": the model's non-speech symbols
    suppress_blank: bool = True  # no lone space or EOT as the first sampled token
    without_timestamps: bool = False  # text only: <|notimestamps|> and no segment times
    max_initial_timestamp: float | None = 1.0  # seconds; the first timestamp may not be later
    repetition_penalty: float = 1.0  # above 1: tokens already sampled in the window are less likely
    no_repeat_ngram_size: int = 0  # above 0: no n-gram of sampled tokens is sampled twice
    seed: int | None = None  # sampling draws from this seed (same input, same output); None: MLX's global state

    def validated(self) -> DecodingOptions:
        if self.task not in TASKS:
            raise InvalidOption("task", self.task, f"choose one of {TASKS}")
        if not math.isfinite(self.temperature) or self.temperature < 0:
            raise InvalidOption("temperature", self.temperature, "must be a finite number >= 0")
        if self.beam_size is not None and (self.beam_size < 1 or self.temperature > 0):
            raise InvalidOption("beam_size", self.beam_size, "needs temperature 0 and a value >= 1")
        if self.best_of is not None and (self.best_of < 1 or self.temperature == 0):
            raise InvalidOption("best_of", self.best_of, "needs temperature > 0 and a value >= 1")
        if self.patience is not None and (self.beam_size is None or not 0 < self.patience <= MAX_PATIENCE):
            raise InvalidOption("patience", self.patience, f"needs beam_size and a value in (0, {MAX_PATIENCE}]")
        if self.length_penalty is not None and not 0 <= self.length_penalty <= 1:
            raise InvalidOption("length_penalty", self.length_penalty, "must be between 0 and 1")
        if self.sample_len is not None and self.sample_len < 1:
            raise InvalidOption("sample_len", self.sample_len, "must be >= 1")
        if not math.isfinite(self.repetition_penalty) or self.repetition_penalty <= 0:
            raise InvalidOption("repetition_penalty", self.repetition_penalty, "must be a finite number > 0")
        if self.no_repeat_ngram_size < 0:
            raise InvalidOption("no_repeat_ngram_size", self.no_repeat_ngram_size, "must be >= 0 (0 turns it off)")
        return self


@dataclass(frozen=True)
class DecodingResult:
    tokens: tuple[int, ...]  # sampled tokens (text and timestamps), without EOT
    text: str
    language: str | None
    avg_logprob: float  # sum of log-probs over (tokens + EOT), divided by their count
    sum_logprob: float
    no_speech_prob: float  # P(<|nospeech|>) right after <|startoftranscript|>
    temperature: float
    compression_ratio: float
    language_probs: dict[str, float] | None = field(default=None, compare=False)


def compression_ratio(text: str) -> float:
    """Bytes per zlib-compressed byte of the stripped text (as both references measure it):
    repetitive (looping) text compresses far better than speech."""
    data = text.strip().encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def length_penalized(sum_logprob: float, length: int, length_penalty: float | None) -> float:
    penalty = length if length_penalty is None else ((5 + length) / 6) ** length_penalty
    return sum_logprob / max(penalty, 1e-9)


def detect_language(model: Any, audio_features: mx.array, tokenizer: Any) -> list[dict[str, float]]:
    """P(language) per window from the language tokens' logits right after <|startoftranscript|>."""
    n_audio = audio_features.shape[0]
    start = mx.full((n_audio, 1), tokenizer.sot, dtype=mx.int32)
    logits, _, _ = model.decoder(start, audio_features)
    lang_tokens = mx.array(list(tokenizer.all_language_tokens), dtype=mx.int32)
    probs = mx.softmax(logits[:, 0, :][:, lang_tokens], axis=-1)  # (n_audio, n_languages)
    codes = list(tokenizer.all_language_codes)
    return [dict(zip(codes, row)) for row in np.array(probs).astype(float).tolist()]


def sot_sequence(tokenizer: Any, multilingual: bool, language: str, task: str) -> list[int]:
    """<|startoftranscript|>, then on multilingual models the language and task tokens."""
    if not multilingual:
        return [tokenizer.sot]
    language_token = dict(zip(tokenizer.all_language_codes, tokenizer.all_language_tokens))[language]
    return [tokenizer.sot, language_token, tokenizer.transcribe if task == "transcribe" else tokenizer.translate]


class DecodingTask:
    """Assembles prompt, filters and strategy for one set of options, then decodes batches of windows."""

    def __init__(self, model: Any, tokenizer: Any, options: DecodingOptions, config: dict | None = None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.options = options.validated()
        self.config = config or {}
        self.n_ctx: int = model.dims.n_text_ctx
        self.n_vocab: int = model.dims.n_vocab
        self.multilingual = bool(getattr(model, "is_multilingual", False))
        self._check_language()
        self.sot_sequence = self._sot_sequence()
        self.initial_tokens = self._initial_tokens()
        self.sample_begin = len(self.initial_tokens)
        self.sot_index = self.initial_tokens.index(tokenizer.sot)
        requested = options.sample_len or self.n_ctx // 2
        # the last sampled token is never fed back, so prefix + samples may reach n_ctx + 1 (as CTranslate2)
        self.sample_len = max(min(requested, self.n_ctx - self.sample_begin + 1), 1)
        self.filters = self._build_filters()

    def _sot_sequence(self) -> list[int]:
        language = self.options.language or "en"  # on multilingual models detection may replace it
        sequence = sot_sequence(self.tokenizer, self.multilingual, language, self.options.task)
        if self.options.without_timestamps:
            sequence.append(self.tokenizer.no_timestamps)
        return sequence

    def _encode(self, text_or_tokens: str | Sequence[int]) -> list[int]:
        if isinstance(text_or_tokens, str):
            return list(self.tokenizer.encode(" " + text_or_tokens.strip()))
        return list(text_or_tokens)

    def _initial_tokens(self) -> list[int]:
        tokens = list(self.sot_sequence)
        if self.options.prefix:
            tokens += self._encode(self.options.prefix)[-(self.n_ctx // 4) :]
        if self.options.prompt:
            prompt = self._encode(self.options.prompt)[-(self.n_ctx // 2 - 1) :]
            tokens = [self.tokenizer.sot_prev] + prompt + tokens
        return tokens

    def suppressed_tokens(self) -> list[int]:
        spec = self.options.suppress_tokens
        if spec is None or spec == "":
            return []
        ids = [int(t) for t in spec.split(",")] if isinstance(spec, str) else list(spec)
        if -1 in ids:
            ids = [t for t in ids if t >= 0]
            ids += list(self.config.get("suppress_ids") or self.tokenizer.non_speech_tokens)
        tok = self.tokenizer
        ids += [tok.transcribe, tok.translate, tok.sot, tok.sot_prev, tok.sot_lm]
        if getattr(tok, "no_speech", None) is not None:
            ids.append(tok.no_speech)
        return sorted({t for t in ids if 0 <= t < self.n_vocab})

    def _build_filters(self) -> list[LogitFilter]:
        # CTranslate2's order: repetition rules, suppressed tokens, then the timestamp grammar
        # (whose timestamp-vs-text test must see every other filter's -inf first).
        filters: list[LogitFilter] = []
        if self.options.repetition_penalty != 1.0:
            filters.append(RepetitionPenalty(self.options.repetition_penalty, self.sample_begin))
        if self.options.no_repeat_ngram_size > 0:
            filters.append(NoRepeatNgram(self.options.no_repeat_ngram_size, self.sample_begin))
        if self.options.suppress_blank:
            blank = self.config.get("suppress_ids_begin") or [*self.tokenizer.encode(" "), self.tokenizer.eot]
            filters.append(SuppressBlank(blank, self.n_vocab))
        suppressed = self.suppressed_tokens()
        if suppressed:
            filters.append(SuppressTokens(suppressed, self.n_vocab))
        if not self.options.without_timestamps:
            limit = self.options.max_initial_timestamp
            filters.append(
                ApplyTimestampRules(
                    eot=self.tokenizer.eot,
                    no_timestamps=self.tokenizer.no_timestamps,
                    timestamp_begin=self.tokenizer.timestamp_begin,
                    n_vocab=self.n_vocab,
                    sample_begin=self.sample_begin,
                    max_initial_timestamp_index=None if limit is None else round(limit / TIME_PRECISION),
                )
            )
        return filters

    def _check_language(self) -> None:
        language, task = self.options.language, self.options.task
        if not self.multilingual:
            if language not in (None, "en"):
                raise InvalidOption("language", language, "this model is English-only")
            if task != "transcribe":
                raise InvalidOption("task", task, "this model is English-only and cannot translate")
        elif language is not None and language not in self.tokenizer.all_language_codes:
            raise InvalidOption("language", language, "not a language code this model knows")

    def with_language(self, language: str | None) -> list[int]:
        tokens = list(self.initial_tokens)
        if language is not None and self.multilingual:
            tokens[self.sot_index + 1] = self._language_token(language)
        return tokens

    def run(self, audio_features: mx.array) -> list[DecodingResult]:
        """Decode each window of `audio_features` (n_audio, n_ctx, D) into its best result."""
        n_audio = audio_features.shape[0]
        languages, language_probs = self._languages(audio_features)
        rows = [self.with_language(lang) for lang in languages]
        prefix = mx.array(np.array(rows, dtype=np.int32))  # (n_audio, T0)
        sot_logits, last_logits, cache = self._prefill(prefix, audio_features)
        no_speech = mx.softmax(sot_logits, axis=-1)[:, self.tokenizer.no_speech]
        group = self.options.beam_size or self.options.best_of or 1
        step = gpu_step.decoder_step(
            self.model, mx.repeat(audio_features, group, axis=0) if group > 1 else audio_features
        )  # static + compiled on a GPU
        last = repeat_rows(last_logits, group)
        cache = self._repeat_cache(cache, group, n_audio)
        start = repeat_rows(prefix, group)
        if self.options.beam_size is not None:
            search = BeamSearch(self.options.beam_size, self.tokenizer.eot, self.options.patience)
            candidates = search.run(step, last, cache, start, self.filters, n_audio=n_audio, n_steps=self.sample_len)
        else:
            tokens, sums = gpu_loop.decode_tokens(
                step, last, cache, start, self.filters,
                temperature=self.options.temperature, eot=self.tokenizer.eot, n_steps=self.sample_len,
                seed=self.options.seed,
            )  # fmt: skip
            candidates = self._group_samples(tokens, sums, n_audio, group)
        no_speech_probs = np.array(no_speech).astype(float).tolist()
        return [
            self._result(best, languages[i], language_probs[i], no_speech_probs[i])
            for i, best in enumerate(self._pick_best(c) for c in candidates)
        ]

    def _repeat_cache(self, cache: Any, group: int, n_audio: int) -> Any:
        """The prefill's cache with a row per beam or sample. For one window on the CPU host path the
        audio keys/values stay one row: every row attends the same audio, and the host step then reads
        it once per head instead of once per row (5 beams: 18 MB a step for tiny.en instead of 92 MB).
        The GPU's static step attends every row's own audio rows (a float32 model there too)."""
        shared = n_audio == 1 and not gpu_step.applies() and host_decoder.plain_float32_layers(self.model.decoder)
        if group == 1 or not shared:
            return repeat_rows(cache, group)
        return [(repeat_rows(self_kv, group), cross_kv) for self_kv, cross_kv in cache]

    def _prefill(self, prefix: mx.array, audio_features: mx.array) -> tuple[mx.array, mx.array, Any]:
        """Run the prefix through the decoder; return the logits at <|startoftranscript|> and at the
        last position (each (n_audio, V)) and the cache.

        The prefix goes in up to three pieces so that no logits are computed for the prompt: MLX
        computes only what is used, and the prompt's logits (up to 223 positions x the vocabulary,
        ~4 GFLOP on tiny) never are.
        """
        decoder, sot = self.model.decoder, self.sot_index
        cache = None
        if sot > 0:  # <|startofprev|> + prompt: only their keys and values are needed
            cache = decoder.prompt_cache(prefix[:, :sot], audio_features)
        sot_logits, cache, _ = decoder(prefix[:, sot : sot + 1], audio_features, cache)
        if prefix.shape[1] == sot + 1:
            return sot_logits[:, 0, :], sot_logits[:, 0, :], cache
        rest_logits, cache, _ = decoder(prefix[:, sot + 1 :], audio_features, cache)  # language, task ...
        return sot_logits[:, 0, :], rest_logits[:, -1, :], cache

    def _languages(self, audio_features: mx.array) -> tuple[list[str | None], list[dict[str, float] | None]]:
        n_audio = audio_features.shape[0]
        if not self.multilingual:
            return ["en"] * n_audio, [None] * n_audio
        if self.options.language is not None:
            return [self.options.language] * n_audio, [None] * n_audio
        probs = detect_language(self.model, audio_features, self.tokenizer)
        return [max(p, key=p.__getitem__) for p in probs], list(probs)

    def _language_token(self, language: str) -> int:
        codes = list(self.tokenizer.all_language_codes)
        return list(self.tokenizer.all_language_tokens)[codes.index(language)]

    def _group_samples(
        self,
        tokens: np.ndarray,
        sums: np.ndarray,
        n_audio: int,
        group: int,
    ) -> list[list[tuple[list[int], float]]]:
        eot = self.tokenizer.eot
        out: list[list[tuple[list[int], float]]] = []
        for i in range(n_audio):
            rows = []
            for row in range(i * group, (i + 1) * group):
                sampled = tokens[row, self.sample_begin :].tolist()
                cut = sampled.index(eot) if eot in sampled else len(sampled)
                rows.append((sampled[:cut], float(sums[row])))
            out.append(rows)
        return out

    def _pick_best(self, candidates: list[tuple[list[int], float]]) -> tuple[list[int], float]:
        penalty = self.options.length_penalty
        return max(candidates, key=lambda c: length_penalized(c[1], len(c[0]), penalty))

    def _result(
        self,
        best: tuple[list[int], float],
        language: str | None,
        probs: dict | None,
        no_speech: float,
    ) -> DecodingResult:
        tokens, sum_logprob = best
        text = self.tokenizer.decode([t for t in tokens if t < self.tokenizer.eot])
        return DecodingResult(
            tokens=tuple(tokens),
            text=text,
            language=language,
            avg_logprob=sum_logprob / (len(tokens) + 1),
            sum_logprob=sum_logprob,
            no_speech_prob=float(no_speech),
            temperature=self.options.temperature,
            compression_ratio=compression_ratio(text),
            language_probs=probs,
        )


def decode(
    model: Any,
    audio_features: mx.array,
    tokenizer: Any,
    options: DecodingOptions | None = None,
    config: dict | None = None,
    **overrides: Any,
) -> list[DecodingResult]:
    """Decode windows' audio features (n_audio, n_ctx, D) with `options` (plus keyword overrides)."""
    known = {f.name for f in fields(DecodingOptions)}
    for name in overrides:
        if name not in known:
            raise InvalidOption(name, overrides[name], f"not a decoding option; known: {sorted(known)}")
    options = replace(options or DecodingOptions(), **overrides)
    return DecodingTask(model, tokenizer, options, config).run(audio_features)
