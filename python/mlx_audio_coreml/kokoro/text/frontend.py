"""The text frontend in one object: text or phonemes in, `TextChunk`s (token ids) out.

It keeps one G2P per language (built on first use: misaki for English when installed, else
espeak-ng) and one vocabulary, and is safe to share between threads (espeak calls are locked).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator

from .chunking import PHONEME_SPLITTERS, Chunker, TextChunk
from .g2p import G2P, make_g2p, resolve_language
from .vocab import MAX_PHONEME_TOKENS, Vocab

_SPACES = re.compile(r"\s+")


def _tidy(phonemes: str) -> str:
    """User phonemes as given, whitespace made single spaces."""
    return _SPACES.sub(" ", phonemes).strip()


class TextFrontend:
    """Text -> phonemes -> chunks of token ids, for any language espeak-ng (or misaki) speaks."""

    def __init__(self, vocab: Vocab, engine: str = "auto", max_tokens: int = MAX_PHONEME_TOKENS) -> None:
        self.vocab = vocab
        self.engine = engine
        self.max_tokens = max_tokens
        self._g2ps: dict[str, G2P] = {}
        self._lock = threading.Lock()
        self._phonemes = Chunker(_tidy, vocab, PHONEME_SPLITTERS, max_tokens)

    def g2p(self, language: str | None = None) -> G2P:
        code = resolve_language(language)
        with self._lock:
            if code not in self._g2ps:
                self._g2ps[code] = make_g2p(code, self.engine)
            return self._g2ps[code]

    def phonemize(self, text: str, language: str | None = None) -> str:
        """Phonemes for `text` in Kokoro's symbols, without chunking."""
        return self.g2p(language)(text)

    def chunks(
        self, text: str | None = None, *, phonemes: str | None = None, language: str | None = None, merge: bool = True
    ) -> Iterator[TextChunk]:
        """Chunks of `text`, or of `phonemes` given directly (G2P skipped); exactly one of the two."""
        if (text is None) == (phonemes is None):
            raise ValueError("give either text or phonemes, not both")
        if phonemes is not None:
            return self._phonemes.chunks(phonemes, merge=merge)
        chunker = Chunker(self.g2p(language), self.vocab, max_tokens=self.max_tokens)
        return chunker.chunks(text or "", merge=merge)
