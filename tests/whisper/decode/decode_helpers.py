"""Shared test helpers for decoding: a small fake tokenizer, text normalization and word error rate."""

from __future__ import annotations

import re
from collections.abc import Sequence

import mlx.core as mx
import numpy as np

import mlx_audio_coreml  # noqa: F401  (OpenBLAS before mlx.core)

# --- A fake tokenizer with a tiny vocabulary laid out like Whisper's ------------------------------
# text 0..99 | eot 100 | sot 101 | translate 102 | transcribe 103 | sot_lm 104 | sot_prev 105 |
# no_speech 106 | no_timestamps 107 | timestamps 108.. (timestamp i = i * 0.02 s)
N_TEXT = 100
N_TIMESTAMPS = 92
FAKE_VOCAB = N_TEXT + 8 + N_TIMESTAMPS  # 200


class FakeTokenizer:
    """Token i < 100 is the word " w<i>"; token 1 is a lone space (the blank)."""

    eot = 100
    sot = 101
    translate = 102
    transcribe = 103
    sot_lm = 104
    sot_prev = 105
    no_speech = 106
    no_timestamps = 107
    timestamp_begin = 108
    all_language_tokens: tuple[int, ...] = ()
    all_language_codes: tuple[str, ...] = ()
    sot_sequence = (101,)
    non_speech_tokens = (2, 3)
    language = None

    def encode(self, text: str) -> list[int]:
        if text.strip() == "":
            return [1]
        return [int(word[1:]) if re.fullmatch(r"w\d+", word) else 50 for word in text.split()]

    def decode(self, tokens: Sequence[int]) -> str:
        return "".join(f" w{t}" for t in tokens if t < self.eot)

    def timestamp(self, seconds: float) -> int:
        return self.timestamp_begin + round(seconds / 0.02)

    def split_to_word_tokens(self, tokens: Sequence[int]) -> tuple[list[str], list[list[int]]]:
        words = [f" w{t}" if t < self.eot else "<|eot|>" for t in tokens]
        return words, [[t] for t in tokens]


# --- Word error rate --------------------------------------------------------------------------
_SPELLED_OUT = {"mr": "mister", "mrs": "missus", "dr": "doctor"}


def normalize(text: str) -> list[str]:
    """Lowercase words without punctuation; hyphens split words; common abbreviations spelled out."""
    text = text.lower().replace("-", " ")
    text = re.sub(r"[^\w\s']", " ", text)
    return [_SPELLED_OUT.get(word, word) for word in text.split()]


def word_errors(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    """Levenshtein distance over words (substitutions + insertions + deletions)."""
    previous = np.arange(len(hypothesis) + 1)
    for i, ref_word in enumerate(reference, start=1):
        current = np.empty_like(previous)
        current[0] = i
        for j, hyp_word in enumerate(hypothesis, start=1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref_word != hyp_word))
        previous = current
    return int(previous[-1])


def wer(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus word error rate: total word errors over total reference words."""
    errors = sum(word_errors(normalize(r), normalize(h)) for r, h in zip(references, hypotheses))
    return errors / sum(len(normalize(r)) for r in references)


# --- Real speech and a tiny random model -----------------------------------------------------
from speech_data import JFK, JFK_TEXT, LIBRIVOX, REPO, librivox_clips  # noqa: E402,F401


def tiny_random_model(seed: int = 0, n_text_ctx: int = 64, n_audio_ctx: int = 32):
    """A 2-layer random Whisper over the fake tokenizer's 200-token vocabulary."""
    from mlx_audio_coreml.whisper.model import ModelDimensions, Whisper

    dims = ModelDimensions(
        n_mels=80, n_audio_ctx=n_audio_ctx, n_audio_state=32, n_audio_head=2, n_audio_layer=1,
        n_vocab=FAKE_VOCAB, n_text_ctx=n_text_ctx, n_text_state=32, n_text_head=2, n_text_layer=2,
    )  # fmt: skip
    mx.random.seed(seed)
    model = Whisper(dims, mx.float32)
    # sharper token distributions than the default init, so searches have something to find
    model.decoder.token_embedding.weight = model.decoder.token_embedding.weight * 3.0
    mx.eval(model.parameters())
    return model
