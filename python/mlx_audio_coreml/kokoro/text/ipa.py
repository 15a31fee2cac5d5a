"""espeak-ng's IPA (with `^` ties) rewritten into Kokoro's phoneme symbols.

Kokoro was trained on misaki's phoneme set, where each diphthong and affricate is ONE symbol
(eɪ -> A, aɪ -> I, aʊ -> W, ɔɪ -> Y, oʊ -> O, British əʊ -> Q, tʃ -> ʧ, dʒ -> ʤ). espeak-ng writes
them as two symbols; asking it for a tie character (`^`) between the parts of one phoneme is what
lets "merchant" (t^ʃ, one phoneme) and "merchantship" (t + ʃ, two) come out differently.
The English rules follow misaki's espeak fallback (Kokoro v1.0, misaki without version "2.0"):
r-colored and reduced vowels become Kokoro's (ɚ -> əɹ, ɝ/ɜː -> ɜɹ in American, ɐ -> ə), flaps and
glottal stops become T and t, syllabic consonants get a small schwa (n̩ -> ᵊn), and American
English drops length marks while British keeps them. Stress marks (ˈ ˌ) are kept everywhere.
Other languages only merge ties into Kokoro's single symbols (ʦ, ʣ, ...), as misaki does.
"""

from __future__ import annotations

import re
import unicodedata

TIE = "^"
SYLLABIC = "\u0329"  # combining vertical line below: n̩, l̩
NASAL = "\u0303"  # combining tilde: kept outside English (Kokoro's vocabulary has it)

# Language-switch flags such as "(en)", written with ties by espeak: "(^e^n)".
_FLAG = re.compile(r"\([^()]*\)")
_SYLLABIC_CONSONANT = re.compile(r"(\S)" + SYLLABIC)

_TIED_ANY_LANGUAGE = {
    "a^ɪ": "I",
    "a^ʊ": "W",
    "e^ɪ": "A",
    "ɔ^ɪ": "Y",
    "d^ʒ": "ʤ",
    "t^ʃ": "ʧ",
    "d^z": "ʣ",
    "t^s": "ʦ",
    "s^s": "S",
}
_OTHER_LANGUAGES = {**_TIED_ANY_LANGUAGE, "o^ʊ": "O", "ə^ʊ": "Q"}

# English in two passes: tied pairs first (one phoneme each), then, ties gone, plain rewrites.
_ENGLISH_TIED = {**_TIED_ANY_LANGUAGE, "ə^l": "ᵊl"}  # espeak 1.51's syllabic l ("little")
_AMERICAN_TIED = {"o^ʊ": "O", "ə^ʊ": "O"}
_BRITISH_TIED = {"e^ə": "ɛː", "ə^ʊ": "Q", "o^ʊ": "Q"}
_ENGLISH_PLAIN = {
    "ʔˌn" + SYLLABIC: "tᵊn",
    "ʔn" + SYLLABIC: "tᵊn",  # "button": glottal stop + syllabic n
    "ʲo": "jo",
    "ʲə": "jə",
    "ʲ": "",
    "ɚ": "əɹ",
    "ɝ": "ɜɹ",
    "ɐ": "ə",
    "r": "ɹ",
    "x": "k",
    "ç": "k",
    "ɬ": "l",
    NASAL: "",
}
_AMERICAN_PLAIN = {"ɜːɹ": "ɜɹ", "ɜː": "ɜɹ", "ɪə": "iə"}
_BRITISH_PLAIN = {"iə": "ɪə"}


def _ordered(table: dict[str, str]) -> list[tuple[str, str]]:
    """Longest first, so that a sequence is rewritten before its parts."""
    return sorted(table.items(), key=lambda kv: -len(kv[0]))


_US_TIED = _ordered({**_ENGLISH_TIED, **_AMERICAN_TIED})
_GB_TIED = _ordered({**_ENGLISH_TIED, **_BRITISH_TIED})
_US_PLAIN = _ordered({**_ENGLISH_PLAIN, **_AMERICAN_PLAIN})
_GB_PLAIN = _ordered({**_ENGLISH_PLAIN, **_BRITISH_PLAIN})
_OTHER_RULES = _ordered(_OTHER_LANGUAGES)
_KEEP_COMPOSED = frozenset("ç")  # precomposed letters with a token of their own


def is_english(language: str) -> bool:
    return language.lower().split("-")[0] == "en"


def is_british(language: str) -> bool:
    """en-gb and its regional voices (en-gb-x-rp, en-gb-scotland, ...) and bare "en" (espeak's British)."""
    lang = language.lower()
    return lang == "en" or lang.startswith(("en-gb", "en-uk"))


def _replace_all(text: str, rules: list[tuple[str, str]]) -> str:
    for old, new in rules:
        text = text.replace(old, new)
    return text


def _cleanup(ipa: str) -> str:
    """Drop what espeak writes that is not a phoneme: language flags, syllable dots, hyphens."""
    return _FLAG.sub("", ipa).replace(".", "").replace("-", "")


def english_to_kokoro(ipa: str, british: bool) -> str:
    ps = _replace_all(_cleanup(ipa), _GB_TIED if british else _US_TIED).replace(TIE, "")
    ps = _replace_all(ps, _GB_PLAIN if british else _US_PLAIN)
    ps = _SYLLABIC_CONSONANT.sub(r"ᵊ\1", ps).replace(SYLLABIC, "")
    if not british:
        ps = ps.replace("ː", "")
    # espeak < 1.52 writes a bare e/o where misaki's set has only A/ɔ (the diphthongs went first).
    ps = ps.replace("e", "A").replace("o", "ɔ")
    return ps.replace("ɾ", "T").replace("ʔ", "t")


def other_to_kokoro(ipa: str) -> str:
    ps = _replace_all(_cleanup(ipa), _OTHER_RULES).replace(TIE, "")
    # Tone numbers and diacritics Kokoro has no token for would only fail tokenization; the
    # base symbol carries most of the sound ("ä" -> "a"). The nasal tilde has a token and stays.
    ps = "".join(c if c in _KEEP_COMPOSED else unicodedata.normalize("NFD", c) for c in ps)
    return "".join(c for c in ps if not c.isdigit() and (c == NASAL or not unicodedata.combining(c)))


def to_kokoro(ipa: str, language: str) -> str:
    """espeak's tied IPA for `language` in Kokoro's symbols (spaces between words kept)."""
    if is_english(language):
        return english_to_kokoro(ipa, british=is_british(language))
    return other_to_kokoro(ipa)
