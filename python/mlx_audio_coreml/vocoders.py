"""The seed's `AudioVocoder` protocol: acoustic features in, waveform out, on MLX or Core ML.

The features are Kokoro's decoder inputs (`VocoderFeatures`: aligned text features, F0, energy,
style). `MLXVocoder` runs the MLX decoder (`kokoro.model.decoder.Decoder`, iSTFTNet with its
harmonic source) with a fixed noise seed; `CoreMLVocoder` runs a vocoder package with the same
four named inputs through any Core ML runtime.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Protocol, runtime_checkable

import mlx.core as mx
import numpy as np

from .coreml.runtime import LoadedModel
from .errors import (
    ModelNotLoaded,
    TensorValidationError,
    UnsupportedSampleRate,
    VocoderCoreMLInferenceFailed,
    VocoderShapeConversionFailed,
)

# Package metadata key a converted vocoder records its output rate under.
SAMPLE_RATE_METADATA_KEY = "mlx_audio_coreml.sample_rate"


@dataclass(frozen=True)
class VocoderFeatures:
    """Kokoro's decoder inputs for F text frames; F0 and energy run at twice the text frame rate.

    Shapes are checked on construction (`VocoderShapeConversionFailed` names expected and got; -1 is
    "any"). The output is F * 600 samples at 24 kHz (300 per F0 frame).
    """

    asr: mx.array  # (B, C, F) duration-aligned text features, channels first (hexgrad's layout); C = 512
    f0: mx.array  # (B, 2F) pitch in Hz per F0 frame (at most 10 Hz = unvoiced)
    energy: mx.array  # (B, 2F) hexgrad's N
    style: mx.array  # (B, S) the decoder half of the reference style; S = 128

    def __post_init__(self) -> None:
        if self.asr.ndim != 3:
            raise VocoderShapeConversionFailed([-1, -1, -1], self.asr.shape, "asr is (batch, channels, frames)")
        batch, _, frames = self.asr.shape
        for name in ("f0", "energy"):
            got = getattr(self, name).shape
            if list(got) != [batch, 2 * frames]:
                raise VocoderShapeConversionFailed([batch, 2 * frames], got, f"{name} is (batch, 2 * asr frames)")
        if self.style.ndim != 2 or self.style.shape[0] != batch:
            raise VocoderShapeConversionFailed([batch, -1], self.style.shape, "style is (batch, style_dim)")

    @property
    def frames(self) -> int:
        """F, the number of text frames (`asr`'s last axis)."""
        return int(self.asr.shape[2])

    def arrays(self) -> dict[str, mx.array]:
        """The four tensors by name, as a vocoder package's inputs are named."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@runtime_checkable
class AudioVocoder(Protocol):
    """Decodes acoustic features into audio samples at `sample_rate`."""

    backend: str  # "mlx" or "coreML"
    sample_rate: int

    def decode(self, features: VocoderFeatures) -> mx.array: ...


class VocoderModule(Protocol):
    """An MLX vocoder: features and a noise key -> (B, samples) at its own `sample_rate`."""

    sample_rate: int

    def __call__(self, features: VocoderFeatures, key: mx.array | None = None) -> mx.array: ...


def _check_rate(sample_rate: int, supported: Sequence[int]) -> int:
    if sample_rate not in supported:
        raise UnsupportedSampleRate(sample_rate, supported)
    return int(sample_rate)


class MLXVocoder:
    """Runs an MLX vocoder module (Kokoro's `Decoder`) at the one rate it produces.

    The harmonic source's noise comes from `mx.random.key(seed)` on every call, so the same features
    always give the same audio.
    """

    backend = "mlx"

    def __init__(self, module: VocoderModule, *, sample_rate: int | None = None, seed: int = 0) -> None:
        self.module = module
        self.sample_rate = _check_rate(sample_rate or module.sample_rate, (module.sample_rate,))
        self.seed = seed

    def decode(self, features: VocoderFeatures) -> mx.array:
        """features -> audio (B, samples) at `sample_rate`."""
        return self.module(features, key=mx.random.key(self.seed))


class CoreMLVocoder:
    """Runs a vocoder package whose inputs are `VocoderFeatures`' four tensors by name, with one output."""

    backend = "coreML"

    def __init__(self, model: LoadedModel, *, sample_rate: int | None = None) -> None:
        description = model.description
        names = sorted(t.name for t in description.inputs)
        wanted = sorted(f.name for f in fields(VocoderFeatures))
        if names != wanted or len(description.outputs) != 1:
            raise VocoderShapeConversionFailed(
                [], [], f"a vocoder package takes inputs {wanted} and has 1 output, not {names} and {len(description.outputs)}"
            )
        self.model: LoadedModel | None = model
        self.inputs = {t.name: t for t in description.inputs}
        self.output = description.outputs[0]
        declared = description.metadata.get(SAMPLE_RATE_METADATA_KEY)
        package_rate = int(declared) if declared else None
        if package_rate is None and sample_rate is None:
            raise ValueError(f"the package does not record its sample rate ({SAMPLE_RATE_METADATA_KEY}); pass sample_rate")
        # A package produces audio at one rate only: asking for another is the seed's unsupportedSampleRate.
        self.sample_rate = _check_rate(sample_rate or package_rate, (package_rate or sample_rate,))  # type: ignore[arg-type]
        self._output = np.empty(self.output.shape, dtype=self.output.dtype)
        self._lock = threading.Lock()

    def _feeds(self, features: VocoderFeatures) -> dict[str, np.ndarray]:
        """Each tensor checked against the package's fixed shape, as a contiguous array of its dtype."""
        feeds = {}
        for name, value in features.arrays().items():
            spec = self.inputs[name]
            if list(value.shape) != list(spec.shape):
                raise VocoderShapeConversionFailed(spec.shape, value.shape, name)
            if value.dtype == mx.bfloat16:
                value = value.astype(mx.float32)
            feeds[name] = np.ascontiguousarray(np.asarray(value), dtype=spec.dtype)
        return feeds

    def decode(self, features: VocoderFeatures) -> mx.array:
        """Features of the package's exact shapes -> waveform as an MLX array."""
        model = self.model
        if model is None:
            raise ModelNotLoaded("Core ML vocoder")
        mx.eval(*features.arrays().values())
        feeds = self._feeds(features)
        with self._lock:
            try:
                result = model.predict(feeds, {self.output.name: self._output})
            except TensorValidationError as exc:
                raise VocoderShapeConversionFailed([], [], str(exc)) from exc
            except Exception as exc:
                raise VocoderCoreMLInferenceFailed(exc) from exc
            return mx.array(result.outputs.get(self.output.name, self._output))

    def close(self) -> None:
        model, self.model = self.model, None
        if model is not None:
            model.close()
