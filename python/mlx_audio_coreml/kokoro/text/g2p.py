"""Grapheme to phoneme: text in, a phoneme string in Kokoro's symbols out.

Two engines behind one call, `g2p(text) -> str`:
  - `MisakiG2P`, hexgrad's own English G2P (dictionaries first, espeak for unknown words), used
    for English when the user has installed misaki (`pip install mlx-audio-coreml[misaki]`);
    detected when the frontend is built, never at import.
  - `EspeakG2P`, espeak-ng mapped into Kokoro's set (ipa.py), for every language espeak speaks.
espeak returns no punctuation, so EspeakG2P sends it runs of words and puts the marks back where
the text had them: attached to the word before (","), or to the word after ("(", "“"), spaced as
in the source, which is how misaki writes them.
"""

from __future__ import annotations

import importlib.util
import re
from typing import Any, Protocol

from ...errors import PhonemizerUnavailable
from .currency import expand_currency
from .espeak import EspeakEngine, default_engine
from .ipa import is_british, is_english, to_kokoro
from .sentences import normalize, pieces

DEFAULT_LANGUAGE = "en-us"
# Kokoro's one-letter language codes (hexgrad's KPipeline) accepted as aliases.
LANGUAGE_ALIASES = {"a": "en-us", "b": "en-gb", "en": "en-gb", "e": "es", "f": "fr", "h": "hi", "i": "it", "p": "pt-br"}

_SPACES = re.compile(r" {2,}")


class G2P(Protocol):
    """Phonemes in Kokoro's symbols for one piece of text (a sentence, a clause, some words)."""

    name: str
    language: str

    def __call__(self, text: str) -> str: ...


def resolve_language(language: str | None) -> str:
    """A language code espeak knows: Kokoro's one-letter codes mapped, case folded, default en-us."""
    code = (language or DEFAULT_LANGUAGE).strip().lower().replace("_", "-")
    return LANGUAGE_ALIASES.get(code, code)


class EspeakG2P:
    """espeak-ng phonemes mapped to Kokoro's symbols, punctuation restored."""

    def __init__(self, language: str = DEFAULT_LANGUAGE, engine: EspeakEngine | None = None) -> None:
        self.language = resolve_language(language)
        self.engine = engine if engine is not None else default_engine()
        self.name = f"espeak-ng ({self.engine.name}, {self.language})"

    def __call__(self, text: str) -> str:
        if is_english(self.language):
            text = expand_currency(text)
        parts: list[str] = []
        for piece in pieces(text):
            spoken = piece.text if piece.is_mark else self._words(piece.text)
            if spoken:
                parts.append(spoken + (" " if piece.space_after else ""))
        return _SPACES.sub(" ", "".join(parts)).strip()

    def _words(self, words: str) -> str:
        return to_kokoro(self.engine.ipa(words, self.language), self.language)


class MisakiG2P:
    """misaki's English G2P, with its espeak fallback for words outside its dictionaries."""

    def __init__(self, language: str = DEFAULT_LANGUAGE) -> None:
        from misaki import en  # pyright: ignore[reportMissingImports]  # optional extra, imported when chosen

        self.language = resolve_language(language)
        british = is_british(self.language)
        self.name = f"misaki ({'en-gb' if british else 'en-us'})"
        self._g2p: Any = en.G2P(trf=False, british=british, fallback=_misaki_fallback(british))

    def __call__(self, text: str) -> str:
        phonemes, _tokens = self._g2p(normalize(text))
        return _SPACES.sub(" ", phonemes or "").strip()


def _misaki_fallback(british: bool) -> Any:
    """misaki's espeak fallback when its own extra dependencies are present, else none."""
    try:
        from misaki import espeak  # pyright: ignore[reportMissingImports]
    except ImportError:
        return None
    return espeak.EspeakFallback(british=british)


def misaki_available() -> bool:
    return importlib.util.find_spec("misaki") is not None


def make_g2p(language: str | None = None, engine: str = "auto") -> G2P:
    """The G2P for `language`: `engine` "auto" (misaki for English when it is installed and
    starts, else espeak-ng), "misaki" (`PhonemizerUnavailable` if it cannot start) or "espeak"."""
    code = resolve_language(language)
    if engine not in ("auto", "misaki", "espeak"):
        raise ValueError(f"unknown G2P engine {engine!r}: use auto, misaki or espeak")
    if engine == "misaki" or (engine == "auto" and is_english(code) and misaki_available()):
        try:
            return MisakiG2P(code)
        # misaki's English needs spaCy and its en_core_web_sm model, which spaCy tries to download
        # on first use and exits on failure: "auto" then means espeak-ng.
        except (Exception, SystemExit) as exc:
            if engine == "misaki":
                raise PhonemizerUnavailable(f"misaki could not start: {exc!r}") from exc
    return EspeakG2P(code)
