"""Split a text MIL program into tokens that remember where they start (line and column on error).

Token kinds: `name` (identifiers, which include type words, `true`, `inf`, `BLOBFILE`), `number`
(decimal, exponent or hexadecimal floats such as `-0x1.388p+13`; the sign is its own token),
`string` (double-quoted, backslash escapes), `arrow` (`->`) and single-character punctuation.
"""

from __future__ import annotations

import bisect
import re
from pathlib import Path
from typing import NamedTuple

from ....errors import MILTextError

_TOKEN = re.compile(
    r"""
    (?P<space>[ \t\r\n]+|//[^\n]*)
    |(?P<number>0[xX][0-9a-fA-F]*(?:\.[0-9a-fA-F]*)?(?:[pP][+-]?[0-9]+)?
               |[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?
               |\.[0-9]+(?:[eE][+-]?[0-9]+)?)
    |(?P<name>[A-Za-z_][A-Za-z0-9_]*)
    |(?P<string>"(?:[^"\\\n]|\\.)*")
    |(?P<arrow>->)
    |(?P<punct>[()\[\]{}<>,=;?+\-*@])
    |(?P<bad>.)
    """,
    re.VERBOSE | re.DOTALL,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "0": "\0"}


class Token(NamedTuple):
    kind: str  # name, number, string, arrow, punct, end
    text: str  # the source text; for a string, its unescaped value
    offset: int  # where it starts in the program text


class SourceText:
    """The program text with its line starts, to turn an offset into a line and column (1-based)."""

    def __init__(self, text: str, path: Path | str) -> None:
        self.text = text
        self.path = str(path)
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def position(self, offset: int) -> tuple[int, int]:
        line = bisect.bisect_right(self._line_starts, offset)
        return line, offset - self._line_starts[line - 1] + 1

    def error(self, offset: int, reason: str) -> MILTextError:
        line, column = self.position(offset)
        return MILTextError(self.path, line, column, reason)


def tokenize(source: SourceText) -> list[Token]:
    """Every token of the text, then an `end` token; MILTextError at the first character that starts none.
    Line and column are worked out only for an error, and tokens are built with tuple.__new__ (the
    named tuple's own constructor is a Python call): together a parse takes about half the time."""
    tokens: list[Token] = []
    append = tokens.append
    make = tuple.__new__
    for match in _TOKEN.finditer(source.text):
        kind = match.lastgroup
        if kind == "space":
            continue
        text = match.group()
        if kind == "string":
            text = _unescape(text[1:-1])
        elif kind == "bad":
            what = "an unterminated string" if text == '"' else f"unexpected character {text!r}"
            raise source.error(match.start(), what)
        append(make(Token, (kind, text, match.start())))
    append(Token("end", "", len(source.text)))
    return tokens


def _unescape(body: str) -> str:
    if "\\" not in body:
        return body
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)
