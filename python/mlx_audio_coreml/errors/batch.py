"""Batch transcription on Ray: the manifest or the output folder cannot be used."""

from __future__ import annotations

from ._base import MlxAudioCoreMLError


class BatchError(MlxAudioCoreMLError):
    """A batch transcription run could not start or finish."""


class ManifestError(BatchError):
    """The manifest at `path` cannot be read as a list of audio files; `reason` says why."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"manifest {path}: {reason}")


class RayUnavailable(BatchError):
    """Ray Data is not installed (the `ray` extra); `reason` is the import error."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"Ray Data is unavailable ({reason}); install it with: pip install 'mlx-audio-coreml[ray]'")
