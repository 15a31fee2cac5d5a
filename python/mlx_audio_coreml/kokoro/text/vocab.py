"""Kokoro's phoneme vocabulary: loading it, and turning a phoneme string into token ids.

Every vocabulary entry is one character (a phoneme, a stress mark, a length mark, a space or a
punctuation mark), so a phoneme string maps to ids character by character. One model call takes
at most 512 tokens: 510 phonemes plus the pad id 0 at each end.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from ...errors import UnknownPhoneme

MAX_PHONEME_TOKENS = 510  # the model's 512 positions less the two pads
PAD_ID = 0

Vocab = Mapping[str, int]


def load_vocab(path: str | Path) -> dict[str, int]:
    """The vocabulary from a vocab.json ({"vocab": {...}} or a flat map) or a config.json (its "vocab")."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    table = data.get("vocab", data) if isinstance(data, dict) else None
    if not isinstance(table, dict) or not table:
        raise ValueError(f"{path} holds no phoneme vocabulary")
    return {str(k): int(v) for k, v in table.items()}


def unknown_phonemes(phonemes: str, vocab: Vocab) -> list[str]:
    """Each distinct character of `phonemes` outside `vocab`, in order of first appearance."""
    return list(dict.fromkeys(c for c in phonemes if c not in vocab))


def tokenize(phonemes: str, vocab: Vocab) -> list[int]:
    """Token ids for `phonemes` (without the pads); `UnknownPhoneme` names every symbol not in `vocab`."""
    missing = unknown_phonemes(phonemes, vocab)
    if missing:
        raise UnknownPhoneme(missing, phonemes)
    return [vocab[c] for c in phonemes]
