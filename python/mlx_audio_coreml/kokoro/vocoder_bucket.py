"""A fixed-shape Core ML vocoder serving chunks of any length: pad up to its frames, trim the audio.

A vocoder package takes one frame count (its bucket, `frames`). A chunk of F <= frames text
frames is zero-padded to the bucket (asr on its frame axis, F0 and energy on theirs), decoded,
and its audio cut back to F * `samples_per_frame`; a longer chunk is decoded by MLX, so every
chunk is spoken. ARCHITECTURE.md's "padded to the next bucket and the audio trimmed", for one
bucket (the lifecycle in loading/component.py loads one package per component).
Note for whoever converts the Kokoro vocoder: its AdaIN blocks normalize over time, so a package
that simply sees the padded zeros computes other statistics than MLX on the unpadded chunk;
a bucketed package must leave the padded frames out of those statistics.
"""

from __future__ import annotations

from typing import Protocol

import mlx.core as mx

from ..vocoders import AudioVocoder, VocoderFeatures

SAMPLES_PER_FRAME = 600  # 24 kHz: two F0 frames per text frame, 300 samples each


class FixedShapeVocoder(Protocol):
    """What `CoreMLVocoder` offers that this wrapper uses."""

    backend: str
    sample_rate: int

    @property
    def neural_engine_compiled(self) -> bool: ...

    def input_shape(self, feature: str) -> tuple[int, ...]: ...

    def decode(self, features: VocoderFeatures) -> mx.array: ...

    def prewarm(self) -> None: ...

    def close(self) -> None: ...


def _pad_frames(x: mx.array, length: int) -> mx.array:
    """Zeros appended on the last axis up to `length`."""
    missing = length - x.shape[-1]
    return x if missing == 0 else mx.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, missing)])


class BucketedVocoder:
    """Core ML for chunks that fit its bucket, MLX for longer ones; `backend` is "coreML"."""

    backend = "coreML"

    def __init__(
        self, coreml: FixedShapeVocoder, mlx: AudioVocoder, samples_per_frame: int = SAMPLES_PER_FRAME
    ) -> None:
        self.coreml = coreml
        self.mlx = mlx
        self.sample_rate = coreml.sample_rate
        self.frames = int(coreml.input_shape("asr")[-1])
        self.samples_per_frame = samples_per_frame

    @property
    def neural_engine_compiled(self) -> bool:
        return self.coreml.neural_engine_compiled

    def decode(self, features: VocoderFeatures) -> mx.array:
        """features -> audio (B, F * samples_per_frame)."""
        frames = features.frames
        if frames > self.frames:
            return self.mlx.decode(features)
        padded = VocoderFeatures(
            asr=_pad_frames(features.asr, self.frames),  # (B, C, bucket)
            f0=_pad_frames(features.f0, 2 * self.frames),  # (B, 2 * bucket)
            energy=_pad_frames(features.energy, 2 * self.frames),
            style=features.style,
        )
        return self.coreml.decode(padded)[:, : frames * self.samples_per_frame]

    def prewarm(self) -> None:
        self.coreml.prewarm()

    def close(self) -> None:
        self.coreml.close()
