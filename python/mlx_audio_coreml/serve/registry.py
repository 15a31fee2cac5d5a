"""The models this server answers for: sessions loaded once and shared by every request.

Speech-to-text sessions are anything with `transcribe(audio, **options) -> (segments, info)` (a
`WhisperSession`); text-to-speech sessions have `synthesize(text, voice=, speed=)` (a `KokoroSession`).
OpenAI's own model names are aliases of the first model of each kind, so clients written for OpenAI
(`model="whisper-1"`, `model="tts-1"`) work unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors.serve import ModelNotServed

STT_ALIASES = ("whisper-1",)
TTS_ALIASES = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts")


@dataclass
class ServedModels:
    """Named sessions by kind. `created` is the Unix time they were loaded (for /v1/models)."""

    transcription: Mapping[str, Any] = field(default_factory=dict)
    speech: Mapping[str, Any] = field(default_factory=dict)
    created: int = field(default_factory=lambda: int(time.time()))

    def transcriber(self, name: str) -> tuple[str, Any]:
        """(canonical name, session) for a speech-to-text model name or alias."""
        return _find(name, self.transcription, STT_ALIASES, "transcription")

    def synthesizer(self, name: str) -> tuple[str, Any]:
        """(canonical name, session) for a text-to-speech model name or alias."""
        return _find(name, self.speech, TTS_ALIASES, "speech")

    def names(self) -> list[str]:
        return [*self.transcription, *self.speech]

    def close(self) -> None:
        for session in [*self.transcription.values(), *self.speech.values()]:
            close = getattr(session, "close", None)
            if close is not None:
                close()


def _find(name: str, sessions: Mapping[str, Any], aliases: tuple[str, ...], kind: str) -> tuple[str, Any]:
    if name in sessions:
        return name, sessions[name]
    if name in aliases and sessions:
        first = next(iter(sessions))
        return first, sessions[first]
    raise ModelNotServed(name, list(sessions), kind)
