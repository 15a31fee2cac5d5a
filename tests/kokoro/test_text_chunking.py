"""Long inputs cut into chunks of at most 510 tokens: at sentences, then clauses, then words, never inside a word."""

from __future__ import annotations

import re

import pytest
from text_support import VOCAB, needs_espeak

from mlx_audio_coreml.errors import WordTooLong
from mlx_audio_coreml.kokoro.text import MAX_PHONEME_TOKENS, Chunker, TextFrontend
from mlx_audio_coreml.kokoro.text.chunking import PHONEME_SPLITTERS

PARAGRAPH = (
    "It was a bright cold day in April, and the clocks were striking thirteen. Winston Smith, his chin "
    "nuzzled into his breast in an effort to escape the vile wind, slipped quickly through the glass doors "
    "of Victory Mansions, though not quickly enough to prevent a swirl of gritty dust from entering along "
    "with him. The hallway smelt of boiled cabbage and old rag mats. At one end of it a coloured poster, too "
    "large for indoor display, had been tacked to the wall. It depicted simply an enormous face, more than "
    "a metre wide: the face of a man of about forty-five, with a heavy black moustache and ruggedly handsome "
    "features. Winston made for the stairs. It was no use trying the lift. Even at the best of times it was "
    "seldom working, and at present the electric current was cut off during daylight hours. "
) * 3


def _words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z0-9'-]+", text)


def _letters(phonemes: str) -> str:
    return "".join(c for c in phonemes if c.isalpha() or c in "ʤʧᵊᵻ")


@needs_espeak
@pytest.mark.parametrize("merge", [True, False])
def test_long_paragraph_keeps_every_word_in_order_within_the_limit(merge: bool) -> None:
    frontend = TextFrontend(VOCAB, engine="espeak")
    chunks = list(frontend.chunks(PARAGRAPH, merge=merge))
    assert len(chunks) > 1
    assert all(0 < len(c.token_ids) <= MAX_PHONEME_TOKENS for c in chunks)
    assert _words(" ".join(c.text for c in chunks)) == _words(PARAGRAPH)
    # The chunks' phonemes are the paragraph's, cut (same sounds, same order).
    whole = frontend.phonemize(PARAGRAPH)
    assert _letters("".join(c.phonemes for c in chunks)) == _letters(whole)


@needs_espeak
def test_merged_chunks_pack_sentences_and_unmerged_ones_follow_sentences() -> None:
    frontend = TextFrontend(VOCAB, engine="espeak")
    merged = list(frontend.chunks(PARAGRAPH))
    per_sentence = list(frontend.chunks(PARAGRAPH, merge=False))
    assert len(merged) < len(per_sentence)
    assert per_sentence[0].text == "It was a bright cold day in April, and the clocks were striking thirteen."


@needs_espeak
def test_a_sentence_over_the_limit_is_cut_at_clauses() -> None:
    frontend = TextFrontend(VOCAB, engine="espeak", max_tokens=60)
    sentence = "The first clause is here, the second clause follows it, and the third one ends the sentence."
    chunks = list(frontend.chunks(sentence))
    assert [c.text for c in chunks] == [
        "The first clause is here, the second clause follows it,",
        "and the third one ends the sentence.",
    ]
    assert all(len(c.token_ids) <= 60 for c in chunks)


@needs_espeak
def test_a_clause_over_the_limit_is_cut_between_words() -> None:
    clause = " ".join(["banana"] * 300)
    chunks = list(TextFrontend(VOCAB, engine="espeak").chunks(clause))
    assert len(chunks) > 1
    assert all(len(c.token_ids) <= MAX_PHONEME_TOKENS for c in chunks)
    assert sum(c.text.split().count("banana") for c in chunks) == 300


@needs_espeak
def test_a_single_word_over_the_limit_is_a_typed_error() -> None:
    with pytest.raises(WordTooLong) as caught:
        list(TextFrontend(VOCAB, engine="espeak", max_tokens=8).chunks("Supercalifragilistic day."))
    assert caught.value.word.startswith("Supercalifragilistic") and caught.value.limit == 8
    assert caught.value.tokens > 8


def test_long_phoneme_input_is_cut_at_sentence_marks_then_spaces() -> None:
    sentence = "ðə kwˈɪk bɹˈWn fˈɑks ʤˈʌmps ˌOvəɹ ðə lˈAzi dˈɑɡ."
    phonemes = " ".join([sentence] * 30)
    chunks = list(TextFrontend(VOCAB).chunks(phonemes=phonemes))
    assert all(len(c.token_ids) <= MAX_PHONEME_TOKENS for c in chunks)
    assert " ".join(c.phonemes for c in chunks) == phonemes
    assert all(c.phonemes.endswith(".") for c in chunks)


def test_one_phoneme_word_over_the_limit_is_a_typed_error() -> None:
    chunker = Chunker(str.strip, VOCAB, PHONEME_SPLITTERS, max_tokens=4)
    with pytest.raises(WordTooLong):
        list(chunker.chunks("hˈI ɹˈiəli"))


@needs_espeak
def test_chunks_are_made_lazily_sentence_by_sentence() -> None:
    seen: list[str] = []

    def phonemize(text: str) -> str:
        seen.append(text)
        return "hˈI."

    chunks = Chunker(phonemize, VOCAB).chunks("One. Two. Three.", merge=False)
    assert next(chunks).text == "One." and seen == ["One."]
