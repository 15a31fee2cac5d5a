"""A fixed-shape Core ML vocoder serving chunks of any length: pad up to its frames, trim the audio.

A vocoder package takes one frame count (its bucket, `frames`). A chunk of F <= frames text
frames is zero-padded to the bucket (asr on its frame axis, F0 and energy on theirs), decoded,
and its audio cut back to F * `samples_per_frame`; a longer chunk is decoded by the MLX vocoder,
so every chunk is spoken. ARCHITECTURE.md's "padded to the next bucket and the audio trimmed",
for one bucket (loading/component.py loads one package per component).
Note for whoever converts the Kokoro vocoder: its AdaIN blocks normalize over time, so a package
that simply sees the padded zeros computes other statistics than MLX on the unpadded chunk; a
bucketed package must leave the padded frames out of those statistics.
"""

from __future__ import annotations

from collections.abc import Mapping

import mlx.core as mx

from ..coreml.runtime import LoadedModel
from ..vocoders import AudioVocoder, CoreMLVocoder, VocoderFeatures

SAMPLES_PER_FRAME = 600  # 24 kHz: two F0 frames per text frame, 300 samples each


def _pad_frames(x: mx.array, length: int) -> mx.array:
    """Zeros appended on the last axis up to `length`."""
    missing = length - x.shape[-1]
    return x if missing == 0 else mx.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, missing)])


class BucketedCoreMLVocoder(CoreMLVocoder):
    """A `CoreMLVocoder` for chunks that fit its bucket, the MLX vocoder for longer ones."""

    def __init__(
        self,
        model: LoadedModel,
        mlx_vocoder: AudioVocoder,
        *,
        sample_rate: int | None = None,
        input_names: Mapping[str, str] | None = None,
        samples_per_frame: int = SAMPLES_PER_FRAME,
    ) -> None:
        super().__init__(model, sample_rate=sample_rate, input_names=input_names)
        self.mlx_vocoder = mlx_vocoder
        self.frames = int(self.input_shape("asr")[-1])
        self.samples_per_frame = samples_per_frame

    def decode(self, features: VocoderFeatures) -> mx.array:
        """features -> audio (B, F * samples_per_frame)."""
        frames = features.frames
        if frames > self.frames:
            return self.mlx_vocoder.decode(features)
        padded = VocoderFeatures(
            asr=_pad_frames(features.asr, self.frames),  # (B, C, bucket)
            f0=_pad_frames(features.f0, 2 * self.frames),  # (B, 2 * bucket)
            energy=_pad_frames(features.energy, 2 * self.frames),
            style=features.style,
        )
        return super().decode(padded)[:, : frames * self.samples_per_frame]
