"""Kokoro text to speech: its config, its weights and its inputs (each Kokoro helper appends its own classes)."""

from __future__ import annotations

from collections.abc import Sequence

from ._base import MlxAudioCoreMLError
from .models import WeightsMismatch


class KokoroError(MlxAudioCoreMLError):
    """Base of every Kokoro-specific error."""


class KokoroConfigError(KokoroError):
    """config.json cannot describe a Kokoro model: `missing` names the absent keys."""

    def __init__(self, missing: Sequence[str], detail: str = "") -> None:
        self.missing = list(missing)
        self.detail = detail
        extra = f"{detail}: " if detail else ""
        super().__init__(f"invalid Kokoro config: {extra}missing {self.missing}")


class KokoroStateMismatch(KokoroError, WeightsMismatch):
    """A canonical Kokoro state does not match the model: every missing, unexpected and misshapen key."""


class KokoroInputError(KokoroError):
    """Token ids or a style the model cannot take; `what` names the input, `expected` and `got` say why."""

    def __init__(self, what: str, expected: str, got: str) -> None:
        self.what = what
        self.expected = expected
        self.got = got
        super().__init__(f"bad Kokoro {what}: expected {expected}, got {got}")
