"""Amounts of money are read as English says them ("3 dollars and 50 cents"), not symbol first."""

from __future__ import annotations

import pytest
from text_support import needs_espeak

from mlx_audio_coreml.kokoro.text.currency import expand_currency
from mlx_audio_coreml.kokoro.text.g2p import EspeakG2P


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$5", "5 dollars"),
        ("$1", "1 dollar"),
        ("$3.50", "3 dollars and 50 cents"),
        ("$3.5", "3 dollars and 50 cents"),
        ("$0.01", "1 cent"),
        ("$1,000,000", "1,000,000 dollars"),
        ("£20.01", "20 pounds and 1 penny"),
        ("€10 each", "10 euros each"),
        ("$1.5 million", "1.5 million dollars"),
        ("It costs $ 12.99.", "It costs 12 dollars and 99 cents."),
        ("5$ and US$5", "5$ and US$5"),  # not an amount we can read safely: left to espeak
    ],
)
def test_amounts_are_written_as_spoken(text: str, expected: str) -> None:
    assert expand_currency(text) == expected


@needs_espeak
def test_english_g2p_reads_the_amount_in_order_and_keeps_the_punctuation() -> None:
    assert EspeakG2P("en-us")("It costs $3.50, or £2.") == "ɪt kˈɔsts θɹˈi dˈɑləɹz ænd fˈɪfti sˈɛnts, ɔɹ tˈu pˈWndz."
