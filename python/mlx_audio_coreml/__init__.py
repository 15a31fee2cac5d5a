"""mlx-audio-coreml: on-device speech on MLX, with fixed-shape parts on Core ML.

    import mlx_audio_coreml as mac
    segments, info = mac.transcribe("speech.wav", model="tiny.en")
    session = mac.WhisperSession.from_pretrained("tiny.en", mac.ModelLoadingOptions.default())

Public names are imported on first use, so `import mlx_audio_coreml` stays cheap and loads an
optimized BLAS before anything imports MLX (see _blas.py).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .cpu import blas as _blas  # noqa: F401  (must run before mlx.core is first imported)

from ._version import __version__

# public name -> module that defines it
_PUBLIC: dict[str, str] = {
    "transcribe": "whisper.session",
    "WhisperSession": "whisper.session",
    "KokoroSession": "kokoro.session",
    "SynthesisInfo": "kokoro.session",
    "ModelLoadingOptions": "options",
    "BackendPreference": "options",
    "Component": "options",
    "WhisperQuantization": "options",
    "ComputeUnits": "coreml.runtime",
    "SessionInfo": "info",
    "WhisperProgress": "progress",
    "Downloading": "progress",
    "DownloadingCoreML": "progress",
    "CompilingANE": "progress",
    "Loading": "progress",
    "CoreMLUnavailable": "progress",
    "CompilationFailed": "progress",
    "DownloadFailed": "progress",
    "AudioEncoder": "encoders",
    "MLXAudioEncoder": "encoders",
    "CoreMLAudioEncoder": "encoders",
    "AudioVocoder": "vocoders",
    "MLXVocoder": "vocoders",
    "CoreMLVocoder": "vocoders",
    "CancelToken": "cancel",
    "TranscribeOptions": "whisper.transcribe",
    "Segment": "whisper.segments",
    "Word": "whisper.segments",
    "TranscriptionInfo": "whisper.segments",
}

__all__ = sorted(_PUBLIC) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'mlx_audio_coreml' has no attribute '{name}'")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


if TYPE_CHECKING:
    from .cancel import CancelToken
    from .coreml.runtime import ComputeUnits
    from .encoders import AudioEncoder, CoreMLAudioEncoder, MLXAudioEncoder
    from .info import SessionInfo
    from .kokoro.session import KokoroSession, SynthesisInfo
    from .options import BackendPreference, Component, ModelLoadingOptions, WhisperQuantization
    from .progress import (
        CompilationFailed,
        CompilingANE,
        CoreMLUnavailable,
        DownloadFailed,
        Downloading,
        DownloadingCoreML,
        Loading,
        WhisperProgress,
    )
    from .vocoders import AudioVocoder, CoreMLVocoder, MLXVocoder
    from .whisper.segments import Segment, TranscriptionInfo, Word
    from .whisper.session import WhisperSession, transcribe
    from .whisper.transcribe import TranscribeOptions
