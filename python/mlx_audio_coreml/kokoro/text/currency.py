"""Amounts of money in English, rewritten into the words espeak-ng reads in the right order.

espeak reads "$3.50" as "dollar three point five zero"; said aloud it is "3 dollars and 50 cents"
(the digits left for espeak, which reads numbers well). Handles $, £ and €, thousands separators,
cents/pence, and scale words ("$1.5 million" -> "1.5 million dollars"). English only: other
languages name and order amounts their own way.
"""

from __future__ import annotations

import re

# symbol -> (unit, units, subunit, subunits)
UNITS = {
    "$": ("dollar", "dollars", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
    "€": ("euro", "euros", "cent", "cents"),
}
_AMOUNT = re.compile(
    r"(?<![\w$£€])([$£€])\s?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?(?:\s?(thousand|million|billion|trillion)\b)?"
)


def _spoken(match: re.Match[str]) -> str:
    unit, units, subunit, subunits = UNITS[match.group(1)]
    whole, fraction, scale = match.group(2), match.group(3), match.group(4)
    if scale:  # "$1.5 million": the scale word carries the amount
        number = whole + (f".{fraction}" if fraction else "")
        return f"{number} {scale} {units}"
    cents = int(fraction.ljust(2, "0")) if fraction else 0
    small = f"{cents} {subunit if cents == 1 else subunits}"
    if whole == "0" and cents:
        return small
    words = f"{whole} {unit if whole == '1' else units}"
    return f"{words} and {small}" if cents else words


def expand_currency(text: str) -> str:
    """`text` with every "$3.50"-style amount written as "3 dollars and 50 cents"."""
    return _AMOUNT.sub(_spoken, text)
