"""A position in a token list, with the look-ahead and the located errors a recursive-descent parser needs."""

from __future__ import annotations

from pathlib import Path

from ....errors import MILTextError
from .lexer import Token


class Cursor:
    def __init__(self, tokens: list[Token], path: Path | str) -> None:
        self.tokens = tokens
        self.path = str(path)
        self.index = 0

    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.index + ahead, len(self.tokens) - 1)]

    def next(self) -> Token:
        token = self.peek()
        self.index = min(self.index + 1, len(self.tokens) - 1)
        return token

    def at(self, text: str, ahead: int = 0) -> bool:
        """Whether the token `ahead` is the punctuation or word `text` (never a string literal)."""
        token = self.peek(ahead)
        return token.kind != "string" and token.text == text

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
        token = token or self.peek()
        return MILTextError(self.path, token.line, token.column, reason)


def describe(token: Token) -> str:
    if token.kind == "end":
        return "the end of the file"
    if token.kind == "string":
        return f'the string "{token.text}"'
    return f"'{token.text}'"
