"""Text cut into sentences, clauses and words, with the punctuation Kokoro has tokens for kept.

Kokoro reads punctuation as prosody (a comma is a short pause, "?" a rising end), so marks are
never dropped: quotes, dashes and ellipses are first normalized to the forms in its vocabulary.
A sentence ends at . ! ? or … followed by space and a word that does not start lowercase
('"Really?" she asked' stays whole), and never after a title ("Dr.", "Mrs.") or an initial
("J. R. R."). Periods of abbreviations stay with their word, so espeak expands them ("Dr." is
"doctor"); an abbreviation before a capital ("the U.S. Army") does end a sentence: a known limit.
Decimals ("3.5") and thousands ("1,000") never split: a mark splits only when space follows.
A line break ends a sentence unless the next line starts lowercase (hard-wrapped prose).
Clauses end at , ; : and the dash. Full-width CJK marks become their ASCII twins (with the space
after them that sentence splitting looks for).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The punctuation tokens of Kokoro's vocabulary.
PUNCTUATION = frozenset(';:,.!?—…"()“”')
SENTENCE_END = frozenset(".!?…")
CLAUSE_END = frozenset(",;:—")
LEADING = frozenset('(“"')
TRAILING = frozenset(';:,.!?—…")”')

# Titles before a name: a period after them never ends a sentence.
TITLES = frozenset(
    {
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "sr",
        "jr",
        "st",
        "mt",
        "rev",
        "hon",
        "gen",
        "col",
        "capt",
        "lt",
        "sgt",
        "gov",
        "pres",
        "sen",
        "rep",
        "fr",
        "messrs",
        "mme",
        "mlle",
    }
)
# Other abbreviations: their period stays with the word (espeak reads "e.g." as "for example").
ABBREVIATIONS = frozenset(
    {
        "e.g",
        "i.e",
        "etc",
        "vs",
        "cf",
        "al",
        "approx",
        "dept",
        "est",
        "fig",
        "inc",
        "ltd",
        "co",
        "corp",
        "no",
        "nos",
        "vol",
        "vols",
        "pp",
        "ch",
        "sec",
        "ca",
        "min",
        "max",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "a.m",
        "p.m",
    }
)

_REPLACEMENTS = (
    (re.compile(r"\r\n?"), "\n"),
    (re.compile(r"\.\s?\.\s?\.|\u2026"), "…"),
    (re.compile(r"\s*(?:[\u2013\u2014\u2015]|--+|(?<=\s)-(?=\s))\s*"), " — "),
    (re.compile(r"[\u2018\u2019\u201b`\u00b4]"), "'"),
    (re.compile(r"[\u00ab\u201e]"), "“"),
    (re.compile(r"\u00bb"), "”"),
    (re.compile(r"[\[{]"), "("),
    (re.compile(r"[\]}]"), ")"),
    (re.compile(r"[。．](?!\s)"), ". "),
    (re.compile(r"[。．]"), "."),  # full-width marks (CJK text)
    (re.compile(r"[、，](?!\s)"), ", "),
    (re.compile(r"[、，]"), ","),
    (re.compile(r"！(?!\s)"), "! "),
    (re.compile(r"！"), "!"),
    (re.compile(r"？(?!\s)"), "? "),
    (re.compile(r"？"), "?"),
    (re.compile(r"；"), "; "),
    (re.compile(r"："), ": "),
    (re.compile(r"[¿¡]"), ""),  # Spanish opening marks: no token, and espeak reads the closing one
    (re.compile(r"[ \t\f\v\u00a0]+"), " "),
)


def normalize(text: str) -> str:
    """Quotes, dashes and ellipses in Kokoro's forms; runs of spaces made one."""
    for pattern, replacement in _REPLACEMENTS:
        text = pattern.sub(replacement, text)
    return text.strip()


def _core(token: str) -> str:
    """A token without its leading and trailing punctuation, lowercased: "(Dr." -> "dr"."""
    return token.strip("".join(PUNCTUATION) + "'").lower()


def _is_initial(core: str) -> bool:
    return len(core) == 1 and core.isalpha()


def keeps_period(token: str) -> bool:
    """True when the token's final period belongs to an abbreviation, not to the sentence."""
    if not token.rstrip("\"”)'").endswith("."):
        return False
    core = _core(token)
    return core in TITLES or core in ABBREVIATIONS or _is_initial(core)


def _ends_sentence(token: str, following: str | None) -> bool:
    if following is None:
        return False
    bare = token.rstrip("\"”)'")
    if not bare or bare[-1] not in SENTENCE_END:
        return False
    if following.lstrip("(“\"'")[:1].islower():  # '"Really?" she asked', "e.g. the"
        return False
    if bare.endswith("."):
        core = _core(token)
        return not (core in TITLES or _is_initial(core))
    return True


def _ends_clause(token: str) -> bool:
    bare = token.rstrip("\"”)'")
    return token == "—" or (bool(bare) and bare[-1] in CLAUSE_END)


def _cut(tokens: list[str], ends: list[bool]) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    for token, end in zip(tokens, ends):
        current.append(token)
        if end:
            parts.append(" ".join(current))
            current = []
    if current:
        parts.append(" ".join(current))
    return parts


def _lines(text: str) -> list[str]:
    """Lines joined where the next one starts lowercase (a wrapped sentence), split elsewhere."""
    blocks: list[str] = []
    for line in (part.strip() for part in text.split("\n")):
        if not line:
            continue
        if blocks and line[0].islower():
            blocks[-1] += " " + line
        else:
            blocks.append(line)
    return blocks


def split_sentences(text: str) -> list[str]:
    """Sentences of `text` (normalized), each stripped, none empty."""
    sentences: list[str] = []
    for block in _lines(normalize(text)):
        tokens = block.split()
        following = tokens[1:] + [None]
        sentences.extend(_cut(tokens, [_ends_sentence(t, f) for t, f in zip(tokens, following)]))
    return sentences


def split_clauses(sentence: str) -> list[str]:
    """Clauses of one sentence, each keeping the mark that ends it."""
    tokens = normalize(sentence).split()
    return _cut(tokens, [_ends_clause(t) for t in tokens])


def split_words(text: str) -> list[str]:
    """Whitespace-separated words, each keeping the punctuation attached to it."""
    return normalize(text).split()


@dataclass(frozen=True)
class Piece:
    """A run of spoken words or one punctuation mark, and whether space followed it."""

    text: str
    is_mark: bool
    space_after: bool


def _peel(token: str, keep_period: bool) -> tuple[list[str], str, list[str]]:
    """(leading marks, word, trailing marks) of one token."""
    lead: list[str] = []
    while token and token[0] in LEADING:
        lead.append(token[0])
        token = token[1:]
    trail: list[str] = []
    while token and token[-1] in TRAILING and not (keep_period and token[-1] == "." and not trail):
        trail.insert(0, token[-1])
        token = token[:-1]
    return lead, token.strip("'"), trail


def pieces(text: str) -> list[Piece]:
    """`text` as alternating word runs and marks (consecutive words share one run)."""
    tokens = normalize(text).split()
    out: list[Piece] = []
    for index, token in enumerate(tokens):
        last = index == len(tokens) - 1
        lead, word, trail = _peel(token, keep_period=not last and keeps_period(token))
        parts = [(m, True) for m in lead] + ([(word, False)] if word else []) + [(m, True) for m in trail]
        for position, (part, is_mark) in enumerate(parts):
            spaced = position == len(parts) - 1 and not last
            if not is_mark and out and not out[-1].is_mark and out[-1].space_after:
                out[-1] = Piece(out[-1].text + " " + part, False, spaced)
            else:
                out.append(Piece(part, is_mark, spaced))
    return out


def has_words(text: str) -> bool:
    """True when anything but punctuation and space is left to speak."""
    return any(not p.is_mark for p in pieces(text))
