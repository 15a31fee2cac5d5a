"""Text (or a phoneme string) cut into chunks that one Kokoro call can speak: <= 510 tokens each.

The cut falls at the widest boundary that fits: whole sentences first (several short ones share a
chunk when `merge` is on), then clauses of a long sentence, then words of a long clause; a word
is never cut, and one word longer than the limit is a `WordTooLong` error. Every chunk carries
its source text, its phonemes and its token ids, so nothing is dropped silently.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ...errors import EmptyText, WordTooLong
from .sentences import (
    PUNCTUATION,
    has_words,
    split_clauses,
    split_sentences,
    split_words,
)
from .vocab import MAX_PHONEME_TOKENS, Vocab, tokenize

Phonemize = Callable[[str], str]


@dataclass(frozen=True)
class TextChunk:
    """One model call's worth of input: the text it came from, its phonemes, their token ids."""

    text: str
    phonemes: str
    token_ids: tuple[int, ...]  # without the two pads


@dataclass(frozen=True)
class Splitters:
    """How a source string is cut at each level (text and phoneme strings cut differently)."""

    sentences: Callable[[str], list[str]]
    clauses: Callable[[str], list[str]]
    words: Callable[[str], list[str]]
    has_content: Callable[[str], bool]


_PHONEME_SENTENCE = re.compile(r"(?<=[.!?…])\s+")
_PHONEME_CLAUSE = re.compile(r"(?<=[,;:—])\s+")


def _phoneme_content(phonemes: str) -> bool:
    return any(c not in PUNCTUATION and not c.isspace() for c in phonemes)


TEXT_SPLITTERS = Splitters(split_sentences, split_clauses, split_words, has_words)
PHONEME_SPLITTERS = Splitters(
    lambda s: [p for p in _PHONEME_SENTENCE.split(s.strip()) if p],
    lambda s: [p for p in _PHONEME_CLAUSE.split(s.strip()) if p],
    str.split,
    _phoneme_content,
)


class Chunker:
    """Cuts sources into `TextChunk`s with one phonemizer and one vocabulary."""

    def __init__(
        self,
        phonemize: Phonemize,
        vocab: Vocab,
        splitters: Splitters = TEXT_SPLITTERS,
        max_tokens: int = MAX_PHONEME_TOKENS,
    ) -> None:
        self.phonemize = phonemize
        self.vocab = vocab
        self.splitters = splitters
        self.max_tokens = max_tokens

    def chunks(self, source: str, merge: bool = True) -> Iterator[TextChunk]:
        """Chunks in order, made lazily (a stream gets its first sentence before the rest is read).

        With `merge` off every chunk is one sentence (or a piece of a long one); with it on,
        consecutive sentences share a chunk while they fit. `EmptyText` when nothing is spoken.
        """
        if not source or not self.splitters.has_content(source):
            raise EmptyText(source)
        pending: TextChunk | None = None
        spoken = False
        for sentence in self.splitters.sentences(source):
            for unit in self._fit(sentence, level=0):
                if not _phoneme_content(unit.phonemes):
                    continue  # a symbol espeak does not speak ("#"): nothing to say
                spoken = True
                if not merge:
                    yield unit
                    continue
                joined = self._join(pending, unit)
                if joined is not None:
                    pending = joined
                    continue
                if pending is not None:
                    yield pending
                pending = unit
        if pending is not None:
            yield pending
        if not spoken:
            raise EmptyText(source)

    def _make(self, text: str) -> TextChunk:
        phonemes = self.phonemize(text)
        return TextChunk(text, phonemes, tuple(tokenize(phonemes, self.vocab)))

    def _join(self, first: TextChunk | None, second: TextChunk) -> TextChunk | None:
        """The two chunks as one, or None when together they exceed the limit."""
        if first is None or len(first.token_ids) + 1 + len(second.token_ids) > self.max_tokens:
            return None
        space = tuple(tokenize(" ", self.vocab))
        return TextChunk(
            f"{first.text} {second.text}",
            f"{first.phonemes} {second.phonemes}",
            first.token_ids + space + second.token_ids,
        )

    def _fit(self, text: str, level: int) -> list[TextChunk]:
        """`text` as chunks within the limit: itself, else its clauses (level 1), else words."""
        whole = self._make(text)
        if len(whole.token_ids) <= self.max_tokens:
            return [whole]
        if level == 0:
            clauses = self.splitters.clauses(text)
            if len(clauses) > 1:
                return self._pack([c for clause in clauses for c in self._fit(clause, level=1)])
        return self._pack_words(self.splitters.words(text))

    def _pack(self, units: list[TextChunk]) -> list[TextChunk]:
        packed: list[TextChunk] = []
        for unit in units:
            joined = self._join(packed[-1], unit) if packed else None
            if joined is not None:
                packed[-1] = joined
            else:
                packed.append(unit)
        return packed

    def _pack_words(self, words: list[str]) -> list[TextChunk]:
        """Greedy: each chunk takes words while the phonemes of all of them together fit."""
        packed: list[TextChunk] = []
        current: TextChunk | None = None
        start = 0
        for end in range(1, len(words) + 1):
            candidate = self._make(" ".join(words[start:end]))
            if len(candidate.token_ids) <= self.max_tokens:
                current = candidate
                continue
            if current is None:  # the single word words[start] is over the limit alone
                raise WordTooLong(words[start], len(candidate.token_ids), self.max_tokens)
            packed.append(current)
            start = end - 1
            current = self._make(words[start])
            if len(current.token_ids) > self.max_tokens:
                raise WordTooLong(words[start], len(current.token_ids), self.max_tokens)
        if current is not None:
            packed.append(current)
        return packed
