"""Split a text MIL program into tokens that remember their line and column.

Token kinds: `name` (identifiers, which include type words, `true`, `inf`, `BLOBFILE`), `number`
(decimal, exponent or hexadecimal floats such as `-0x1.388p+13`; the sign is its own token),
`string` (double-quoted, backslash escapes), `arrow` (`->`) and single-character punctuation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

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
    """,
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "0": "\0"}


@dataclass(frozen=True)
class Token:
    kind: str  # name, number, string, arrow, punct, end
    text: str  # the source text; for a string, its unescaped value
    line: int
    column: int


def tokenize(text: str, path: Path | str) -> list[Token]:
    """Every token of `text`, then an `end` token; MILTextError at the first character that starts none."""
    tokens: list[Token] = []
    line, line_start, position = 1, 0, 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        column = position - line_start + 1
        if match is None:
            what = "an unterminated string" if text[position] == '"' else f"unexpected character {text[position]!r}"
            raise MILTextError(str(path), line, column, what)
        kind = match.lastgroup or "space"
        value = match.group()
        if kind == "string":
            tokens.append(Token(kind, _unescape(value[1:-1]), line, column))
        elif kind != "space":
            tokens.append(Token(kind, value, line, column))
        newlines = value.count("\n")
        if newlines:
            line += newlines
            line_start = position + value.rindex("\n") + 1
        position = match.end()
    tokens.append(Token("end", "", line, position - line_start + 1))
    return tokens


def _unescape(body: str) -> str:
    if "\\" not in body:
        return body
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)
