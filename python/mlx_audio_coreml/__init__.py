"""mlx-audio-coreml: on-device speech on MLX, with fixed-shape parts on Core ML.

    import mlx_audio_coreml as mac
    segments, info = mac.transcribe("speech.wav", model="tiny.en")
    session = mac.WhisperSession.from_pretrained("tiny.en", mac.ModelLoadingOptions.default())

Public names are imported on first use, so `import mlx_audio_coreml` stays cheap and loads an
optimized BLAS before anything imports MLX (see cpu/blas.py).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Loads an optimized BLAS; must run before mlx.core is first imported. Imported by name because
# nothing here uses the module itself.
importlib.import_module(f"{__name__}.cpu.blas")

from ._version import __version__ as __version__  # noqa: E402

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
    "TranscribeOptions": "whisper.transcribe_options",
    "Segment": "whisper.segments",
    "Word": "whisper.segments",
    "TranscriptionInfo": "whisper.segments",
}

# A literal list so type checkers read it; tests/test_public_api.py keeps it equal to _PUBLIC.
__all__ = [
    "AudioEncoder",
    "AudioVocoder",
    "BackendPreference",
    "CancelToken",
    "CompilationFailed",
    "CompilingANE",
    "Component",
    "ComputeUnits",
    "CoreMLAudioEncoder",
    "CoreMLUnavailable",
    "CoreMLVocoder",
    "DownloadFailed",
    "Downloading",
    "DownloadingCoreML",
    "KokoroSession",
    "Loading",
    "MLXAudioEncoder",
    "MLXVocoder",
    "ModelLoadingOptions",
    "Segment",
    "SessionInfo",
    "SynthesisInfo",
    "TranscribeOptions",
    "TranscriptionInfo",
    "WhisperProgress",
    "WhisperQuantization",
    "WhisperSession",
    "Word",
    "transcribe",
    "__version__",
]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'mlx_audio_coreml' has no attribute '{name}'")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


if TYPE_CHECKING:
    from .cancel import CancelToken as CancelToken
    from .coreml.runtime import ComputeUnits as ComputeUnits
    from .encoders import (
        AudioEncoder as AudioEncoder,
    )
    from .encoders import (
        CoreMLAudioEncoder as CoreMLAudioEncoder,
    )
    from .encoders import (
        MLXAudioEncoder as MLXAudioEncoder,
    )
    from .info import SessionInfo as SessionInfo
    from .kokoro.session import (
        KokoroSession as KokoroSession,
    )
    from .kokoro.session import (
        SynthesisInfo as SynthesisInfo,
    )
    from .options import (
        BackendPreference as BackendPreference,
    )
    from .options import (
        Component as Component,
    )
    from .options import (
        ModelLoadingOptions as ModelLoadingOptions,
    )
    from .options import (
        WhisperQuantization as WhisperQuantization,
    )
    from .progress import (
        CompilationFailed as CompilationFailed,
    )
    from .progress import (
        CompilingANE as CompilingANE,
    )
    from .progress import (
        CoreMLUnavailable as CoreMLUnavailable,
    )
    from .progress import (
        DownloadFailed as DownloadFailed,
    )
    from .progress import (
        Downloading as Downloading,
    )
    from .progress import (
        DownloadingCoreML as DownloadingCoreML,
    )
    from .progress import (
        Loading as Loading,
    )
    from .progress import (
        WhisperProgress as WhisperProgress,
    )
    from .vocoders import (
        AudioVocoder as AudioVocoder,
    )
    from .vocoders import (
        CoreMLVocoder as CoreMLVocoder,
    )
    from .vocoders import (
        MLXVocoder as MLXVocoder,
    )
    from .whisper.segments import (
        Segment as Segment,
    )
    from .whisper.segments import (
        TranscriptionInfo as TranscriptionInfo,
    )
    from .whisper.segments import (
        Word as Word,
    )
    from .whisper.session import (
        WhisperSession as WhisperSession,
    )
    from .whisper.session import (
        transcribe as transcribe,
    )
    from .whisper.transcribe_options import TranscribeOptions as TranscribeOptions
