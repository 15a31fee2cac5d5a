"""Sentence, clause and word splitting: abbreviations, decimals, quotes, dashes, line breaks."""

from __future__ import annotations

import pytest

from mlx_audio_coreml.kokoro.text.sentences import (
    normalize,
    pieces,
    split_clauses,
    split_sentences,
)


def test_sentences_split_at_terminal_marks_and_keep_them() -> None:
    assert split_sentences("Hello there. How are you? Fine! Well…") == [
        "Hello there.",
        "How are you?",
        "Fine!",
        "Well…",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "Dr. Smith met Mrs. Jones at St. Paul's.",
        "J. R. R. Tolkien wrote it.",
        "It costs 3.50 dollars and weighs 1.25 kilograms.",
        "We sold 1,000,000 copies.",
        'He asked "Really?" and she said "yes."',
        "See e.g. the appendix, i.e. the last part.",
        '"Really?" she asked.',
    ],
)
def test_abbreviations_decimals_and_quoted_questions_do_not_end_a_sentence(text: str) -> None:
    assert split_sentences(text) == [text]


def test_closing_quote_after_the_period_stays_with_its_sentence() -> None:
    assert split_sentences("She said “Go home.” Then she left.") == ["She said “Go home.”", "Then she left."]


def test_line_breaks_end_sentences_unless_the_next_line_continues_lowercase() -> None:
    text = "Chapter One\nIt was the best of times, it was the\nworst of times.\n\nThe end"
    assert split_sentences(text) == ["Chapter One", "It was the best of times, it was the worst of times.", "The end"]


def test_clauses_split_after_commas_semicolons_colons_and_dashes() -> None:
    assert split_clauses("First, second; third: fourth — fifth.") == [
        "First,",
        "second;",
        "third:",
        "fourth —",
        "fifth.",
    ]


def test_thousands_separator_is_not_a_clause_boundary() -> None:
    assert split_clauses("About 1,500 people came, then left.") == ["About 1,500 people came,", "then left."]


def test_normalize_maps_marks_to_kokoro_forms() -> None:
    text = "Wait... what -- no \u2013 yes «oui» don\u2019t [x]"
    assert normalize(text) == "Wait… what — no — yes “oui” don't (x)"


def test_pieces_keep_abbreviation_periods_in_words_and_split_marks() -> None:
    got = [(p.text, p.is_mark, p.space_after) for p in pieces("Dr. Who said, “Hi!” (twice)")]
    assert got == [
        ("Dr. Who said", False, False),
        (",", True, True),
        ("“", True, False),
        ("Hi", False, False),
        ("!", True, False),
        ("”", True, True),
        ("(", True, False),
        ("twice", False, False),
        (")", True, False),
    ]


def test_sentence_final_abbreviation_period_is_punctuation() -> None:
    got = pieces("I like apples, pears, etc.")
    assert got[-1].text == "." and got[-1].is_mark
    assert got[-2].text == "etc"


def test_full_width_marks_become_kokoro_punctuation_and_split_sentences() -> None:
    assert split_sentences("你好，世界。你好吗？") == ["你好, 世界.", "你好吗?"]
    assert normalize("¿Cómo estás? ¡Hola!") == "Cómo estás? Hola!"
