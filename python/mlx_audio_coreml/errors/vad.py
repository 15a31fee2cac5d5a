"""Voice activity detection: the Silero model could not be found or run."""

from __future__ import annotations

from collections.abc import Sequence

from ._base import MlxAudioCoreMLError


class VadError(MlxAudioCoreMLError):
    """Voice activity detection could not run."""


class VadModelMissing(VadError):
    """No Silero VAD model file was found; `searched` lists where we looked, `hint` how to get one."""

    def __init__(self, searched: Sequence[str], hint: str) -> None:
        self.searched = [str(s) for s in searched]
        self.hint = hint
        super().__init__(f"no Silero VAD model found (looked in {self.searched}). {hint}")


class VadUnavailable(VadError):
    """The VAD runtime (onnxruntime) is missing or refused the model; `reason` says which."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"voice activity detection is unavailable: {reason}")
