"""A position in a token list, with the look-ahead and the located errors a recursive-descent parser needs."""

from __future__ import annotations

from typing import Any

from ....errors import MILTextError
from .lexer import SourceText, Token

_LOOKAHEAD = 4  # the parser looks at most this many tokens past the current one


class Cursor:
    def __init__(self, tokens: list[Token], source: SourceText) -> None:
        # padded with copies of the end token so that peeking ahead never runs off the list
        self.tokens = tokens + [tokens[-1]] * _LOOKAHEAD
        self.last = len(tokens) - 1
        self.source = source
        self.index = 0
        self.types: dict[tuple[str, ...], Any] = {}  # tensor types met so far (types.py)

    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[self.index + ahead]

    def next(self) -> Token:
        token = self.tokens[self.index]
        if self.index < self.last:
            self.index += 1
        return token

    def at(self, text: str, ahead: int = 0) -> bool:
        """Whether the token `ahead` is the punctuation or word `text` (never a string literal)."""
        token = self.tokens[self.index + ahead]
        return token.text == text and token.kind != "string"

    def accept(self, text: str) -> bool:
        if self.at(text):
            self.next()
            return True
        return False

    def expect(self, text: str, context: str = "") -> Token:
        if not self.at(text):
            where = f" {context}" if context else ""
            raise self.error(f"expected '{text}'{where}, found {describe(self.peek())}")
        return self.next()

    def expect_kind(self, kind: str, what: str) -> Token:
        if self.peek().kind != kind:
            raise self.error(f"expected {what}, found {describe(self.peek())}")
        return self.next()

    def error(self, reason: str, token: Token | None = None) -> MILTextError:
        return self.source.error((token or self.peek()).offset, reason)


def describe(token: Token) -> str:
    if token.kind == "end":
        return "the end of the file"
    if token.kind == "string":
        return f'the string "{token.text}"'
    return f"'{token.text}'"
