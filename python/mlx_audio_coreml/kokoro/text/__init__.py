"""Kokoro's text frontend: sentences, phonemes (espeak-ng or misaki), token ids, chunks."""

from __future__ import annotations

from .chunking import Chunker, TextChunk
from .frontend import TextFrontend
from .g2p import (
    DEFAULT_LANGUAGE,
    EspeakG2P,
    MisakiG2P,
    make_g2p,
    misaki_available,
    resolve_language,
)
from .sentences import normalize, split_clauses, split_sentences
from .vocab import MAX_PHONEME_TOKENS, PAD_ID, load_vocab, tokenize, unknown_phonemes

__all__ = [
    "DEFAULT_LANGUAGE",
    "MAX_PHONEME_TOKENS",
    "PAD_ID",
    "Chunker",
    "EspeakG2P",
    "MisakiG2P",
    "TextChunk",
    "TextFrontend",
    "load_vocab",
    "make_g2p",
    "misaki_available",
    "normalize",
    "resolve_language",
    "split_clauses",
    "split_sentences",
    "tokenize",
    "unknown_phonemes",
]
