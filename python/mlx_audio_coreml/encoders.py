"""The seed's `AudioEncoder` protocol and its MLX implementation.

An encoder takes a log-mel spectrogram laid out as the seed says, (batch, n_mels, n_frames), and
returns encoder states (batch, n_audio_ctx, d_model) as an MLX array, whichever backend ran it.
`CoreMLAudioEncoder` (Core ML through a runtime) lives in `coreml_encoder.py`.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import mlx.core as mx

from .errors import ShapeConversionFailed


@runtime_checkable
class AudioEncoder(Protocol):
    """Encodes a mel spectrogram (B, n_mels, n_frames) into encoder states (B, n_ctx, d_model)."""

    backend: str  # "mlx" or "coreML": what actually runs

    def encode(self, mel: mx.array) -> mx.array: ...


class MLXAudioEncoder:
    """Runs the Whisper encoder module on MLX (Metal, CUDA or CPU)."""

    backend = "mlx"

    def __init__(self, module: Any, n_mels: int, n_frames: int = 3000) -> None:
        self.module = module  # whisper.model.WhisperEncoder (the seed's name): takes (B, n_frames, n_mels)
        self.n_mels = n_mels
        self.n_frames = n_frames

    def encode(self, mel: mx.array) -> mx.array:
        if mel.ndim == 2:
            mel = mel[None]
        if mel.ndim != 3 or mel.shape[1] != self.n_mels or mel.shape[2] != self.n_frames:
            raise ShapeConversionFailed([mel.shape[0] if mel.ndim == 3 else 1, self.n_mels, self.n_frames], list(mel.shape))
        return self.module(mel.transpose(0, 2, 1))  # (B, n_frames, n_mels): MLX convs are channels-last
