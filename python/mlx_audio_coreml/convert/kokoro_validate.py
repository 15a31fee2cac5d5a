"""Check a converted Kokoro vocoder package: run it through a Core ML runtime and compare with the MLX decoder.

The features are a deterministic chunk shorter than the bucket (so the padding path is exercised):
speech-like F0 with an unvoiced stretch, random asr/energy/style. The MLX reference runs with the
source noise off, as the package computes it. The measure is the SNR of the package's audio against
MLX's over the chunk's samples; below the precision's floor the conversion fails.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConversionValidationFailed
from ..vocoders import VocoderFeatures

SAMPLES_PER_FRAME = 600


@dataclass(frozen=True)
class VocoderValidation:
    runtime: str
    chunk_frames: int  # real frames of the validation chunk (the rest of the bucket is padding)
    snr_db: float
    max_abs: float
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def snr_db(got: np.ndarray, want: np.ndarray) -> float:
    """10 log10(|want|^2 / |got - want|^2), in float64."""
    got64, want64 = np.asarray(got, np.float64), np.asarray(want, np.float64)
    noise = float(np.sum((got64 - want64) ** 2))
    return float("inf") if noise == 0.0 else 10.0 * float(np.log10(float(np.sum(want64**2)) / noise))


def validation_features(dim_in: int, style_dim: int, frames: int, seed: int = 0) -> VocoderFeatures:
    """A deterministic chunk of `frames` text frames."""
    import mlx.core as mx

    rng = np.random.default_rng(seed)
    t = np.arange(2 * frames) / 80.0  # F0 frames run at 80 a second
    # Jittered, as predicted F0 is: a steady pitch makes STFT frames symmetric, and bins then sit on
    # atan2's branch cut (phase +pi or -pi by rounding alone), which any two implementations split differently.
    f0 = 160.0 + 40.0 * np.sin(2 * np.pi * 0.7 * t) + 30.0 * rng.random(t.shape)
    f0[: max(1, frames // 8)] = 0.0  # an unvoiced onset
    return VocoderFeatures(
        asr=mx.array(rng.standard_normal((1, dim_in, frames)) * 0.5, mx.float32),
        f0=mx.array(f0[None], mx.float32),
        energy=mx.array(rng.standard_normal((1, 2 * frames)), mx.float32),
        style=mx.array(rng.standard_normal((1, style_dim)) * 0.3, mx.float32),
    )


def padded_inputs(features: VocoderFeatures, frames: int) -> dict[str, np.ndarray]:
    """The package's inputs: features zero-padded to the bucket on their frame axes."""

    def pad(x: Any, length: int) -> np.ndarray:
        a = np.asarray(x, dtype=np.float32)
        return np.pad(a, [(0, 0)] * (a.ndim - 1) + [(0, length - a.shape[-1])])

    return {
        "asr": pad(features.asr, frames),
        "f0": pad(features.f0, 2 * frames),
        "energy": pad(features.energy, 2 * frames),
        "style": np.asarray(features.style, dtype=np.float32),
    }


def validate_vocoder_package(
    path: Path, decoder: Any, frames: int, min_snr_db: float, runtime: str = "portable", function: str | None = None
) -> VocoderValidation:
    """Run the package (its function `function`, for a multi-function package: portable runtime only) on a
    chunk of 3/4 of its bucket and compare with `decoder` (noise off)."""
    from ..coreml.portable import PortableRuntime
    from ..coreml.registry import get_runtime
    from ..options import ComputeUnits

    chunk = max(2, (3 * frames) // 4)
    features = validation_features(decoder.dim_in, decoder.style_dim, chunk)
    want = np.asarray(decoder(features, key=None))
    started = time.perf_counter()
    if function is None:
        loaded = get_runtime(runtime).load(Path(path), ComputeUnits.ALL)
    else:
        loaded = PortableRuntime().load(Path(path), ComputeUnits.ALL, function=function)
    try:
        result = loaded.predict(padded_inputs(features, frames))
        got = np.asarray(result.outputs["audio"])[:, : want.shape[1]]
    finally:
        loaded.close()
    report = VocoderValidation(
        runtime, chunk, snr_db(got, want), float(np.max(np.abs(got - want))), time.perf_counter() - started
    )
    if report.snr_db < min_snr_db:
        # ConversionValidationFailed speaks in relative error: the SNR's amplitude ratio
        raise ConversionValidationFailed(10 ** (-report.snr_db / 20), 10 ** (-min_snr_db / 20), runtime)
    return report
