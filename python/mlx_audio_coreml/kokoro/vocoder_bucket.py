"""Fixed-shape Core ML vocoders serving chunks of any length: the smallest bucket that fits, padded, trimmed.

A vocoder package takes one frame count (its bucket). `BucketedCoreMLVocoder` holds one or more
of them (a converted companion folder has one per bucket: DEFAULT_BUCKETS, 32 to 512 text frames
~1.25x apart, by default). A chunk of F text frames goes to the smallest bucket B >= F: zero-padded to B (asr on
its frame axis, F0 and energy on theirs), decoded, and its audio cut back to F * `samples_per_frame`;
a chunk longer than the largest bucket is decoded by the MLX vocoder, so every chunk is spoken.
ARCHITECTURE.md's "padded to the next bucket and the audio trimmed". The packages convert/kokoro*
writes leave the padded frames out of every statistic, so the kept audio equals MLX's on the
unpadded chunk (tests/convert/test_kokoro_convert.py).
A session builds one per loaded package and `combine`s them (loading/component.py's `assemble`).
A multi-function companion (one package, a function `frames_<N>` per bucket: the macOS 15 / iOS 18
layout) loads each function as its own model (loading/packages.py's `companion_units`), so every
bucket here is one loaded function, whichever runtime loaded it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import mlx.core as mx

from ..coreml.runtime import LoadedModel
from ..errors import ModelNotLoaded, UnsupportedSampleRate
from ..vocoders import AudioVocoder, CoreMLVocoder, VocoderFeatures

# The converter's default text-frame buckets (40 frames a second: 0.8 to 12.8 s of speech), ~1.25x apart so a
# chunk is padded by at most 28% (a padded frame costs the portable runtime ~30% of a real one: doubling steps
# cost a 146-frame sentence +22% CPU at bucket 256). Cheap in memory since loaded buckets share their weights
# (coreml/portable/shared.py: ~15-55 MB a bucket past the first, real Kokoro, bench/results/vocoder_portable_vs_mlx.md).
# Kept here, not in convert/, so the CLI can show them without importing coremltools (and torch through it).
DEFAULT_BUCKETS: tuple[int, ...] = (32, 40, 50, 64, 80, 100, 128, 160, 200, 256, 320, 400, 512)
SAMPLES_PER_FRAME = 600  # 24 kHz: two F0 frames per text frame, 300 samples each


def _pad_frames(x: mx.array, length: int) -> mx.array:
    """Zeros appended on the last axis up to `length`."""
    missing = length - x.shape[-1]
    return x if missing == 0 else mx.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, missing)])


def padded_to(features: VocoderFeatures, frames: int) -> VocoderFeatures:
    """`features` zero-padded to `frames` text frames (a bucket's shapes)."""
    return VocoderFeatures(
        asr=_pad_frames(features.asr, frames),  # (B, C, bucket)
        f0=_pad_frames(features.f0, 2 * frames),  # (B, 2 * bucket)
        energy=_pad_frames(features.energy, 2 * frames),
        style=features.style,
    )


class BucketedCoreMLVocoder:
    """Core ML vocoder packages of several frame buckets, and the MLX vocoder for longer chunks."""

    backend = "coreML"

    def __init__(
        self,
        model: LoadedModel,
        mlx_vocoder: AudioVocoder,
        *,
        sample_rate: int | None = None,
        input_names: Mapping[str, str] | None = None,
        samples_per_frame: int = SAMPLES_PER_FRAME,
    ) -> None:
        """One package (its bucket is its asr input's frame count); `combine` joins several."""
        vocoder = CoreMLVocoder(model, sample_rate=sample_rate, input_names=input_names)
        self._set({int(vocoder.input_shape("asr")[-1]): vocoder}, mlx_vocoder, samples_per_frame)

    def _set(self, buckets: Mapping[int, CoreMLVocoder], mlx_vocoder: AudioVocoder, samples_per_frame: int) -> None:
        self.buckets: dict[int, CoreMLVocoder] = dict(sorted(buckets.items()))
        self.mlx_vocoder = mlx_vocoder
        self.samples_per_frame = samples_per_frame
        self.sample_rate = next(iter(self.buckets.values())).sample_rate
        self.closed = False

    @classmethod
    def combine(cls, parts: Sequence[BucketedCoreMLVocoder]) -> BucketedCoreMLVocoder:
        """One vocoder over every bucket of `parts` (the MLX vocoder of the first); ValueError when two
        parts share a bucket, UnsupportedSampleRate when their rates differ."""
        if not parts:
            raise ValueError("no vocoder packages to combine")
        buckets: dict[int, CoreMLVocoder] = {}
        for part in parts:
            for frames, vocoder in part.buckets.items():
                if frames in buckets:
                    raise ValueError(f"two vocoder packages take {frames} frames")
                if vocoder.sample_rate != parts[0].sample_rate:
                    raise UnsupportedSampleRate(vocoder.sample_rate, [parts[0].sample_rate])
                buckets[frames] = vocoder
        combined = cls.__new__(cls)
        combined._set(buckets, parts[0].mlx_vocoder, parts[0].samples_per_frame)
        return combined

    @property
    def frames(self) -> int:
        """The largest bucket: longer chunks go to MLX."""
        return max(self.buckets)

    def bucket_for(self, frames: int) -> int | None:
        """The smallest bucket holding `frames` text frames; None when none does (MLX decodes it)."""
        return next((b for b in self.buckets if b >= frames), None)

    @property
    def neural_engine_compiled(self) -> bool:
        return all(v.neural_engine_compiled for v in self.buckets.values())

    def decode(self, features: VocoderFeatures) -> mx.array:
        """features -> audio (B, F * samples_per_frame)."""
        if self.closed:
            raise ModelNotLoaded("Core ML vocoder")
        frames = features.frames
        bucket = self.bucket_for(frames)
        if bucket is None:
            return self.mlx_vocoder.decode(features)
        audio = self.buckets[bucket].decode(padded_to(features, bucket))
        return audio[:, : frames * self.samples_per_frame]

    def prewarm(self) -> None:
        """One prediction on zeros per bucket; raises VocoderCoreMLInferenceFailed on failure or NaN/Inf."""
        for vocoder in self.buckets.values():
            vocoder.prewarm()

    def close(self) -> None:
        self.closed = True
        for vocoder in self.buckets.values():
            vocoder.close()

    def describe(self) -> str:
        """For SessionInfo's notes: which buckets run on Core ML."""
        sizes = ", ".join(str(b) for b in self.buckets)
        return f"vocoder buckets on Core ML (text frames): {sizes}; chunks over {self.frames} frames on MLX"
