"""Audio output: encoding samples and writing audio files."""

from __future__ import annotations

from collections.abc import Sequence

from .models import AudioError


class AudioWriteError(AudioError):
    """An audio file could not be written; nothing was left at `path`."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot write audio to {path}: {reason}")


class UnsupportedAudioFormat(AudioError):
    """An output format this package does not write; `supported` lists those it does."""

    def __init__(self, fmt: str, supported: Sequence[str]) -> None:
        self.format = fmt
        self.supported = list(supported)
        super().__init__(f"cannot write audio as {fmt!r}; supported: {', '.join(self.supported)}")


class AudioEncoderUnavailable(AudioError):
    """A known format whose encoder is missing here (mp3 needs libsndfile with MP3, or ffmpeg)."""

    def __init__(self, fmt: str, reason: str) -> None:
        self.format = fmt
        self.reason = reason
        super().__init__(f"cannot encode {fmt}: {reason}")
