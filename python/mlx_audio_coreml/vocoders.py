"""The seed's `AudioVocoder` protocol: acoustic features in, waveform out, on MLX or Core ML.

The Kokoro vocoder itself (iSTFTNet with its harmonic source) is a later issue: `MLXVocoder`
wraps whatever MLX module it is given, and `CoreMLVocoder` runs a vocoder package through any
Core ML runtime. Neither is wired into a session yet; the protocol pair exists so the text-to-speech
side plugs into the same selection and fallback as the Whisper encoder.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
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


@runtime_checkable
class AudioVocoder(Protocol):
    """Decodes acoustic features into audio samples at `sample_rate`."""

    backend: str  # "mlx" or "coreML"
    sample_rate: int

    def decode(self, features: mx.array) -> mx.array: ...


def _check_rate(sample_rate: int, supported: Sequence[int]) -> int:
    if sample_rate not in supported:
        raise UnsupportedSampleRate(sample_rate, supported)
    return int(sample_rate)


class MLXVocoder:
    """Runs an MLX vocoder module (any callable features -> waveform)."""

    backend = "mlx"

    def __init__(
        self,
        module: Callable[[mx.array], mx.array],
        *,
        sample_rate: int,
        supported_sample_rates: Sequence[int] | None = None,
    ) -> None:
        self.module = module
        self.sample_rate = _check_rate(sample_rate, supported_sample_rates or (sample_rate,))

    def decode(self, features: mx.array) -> mx.array:
        return self.module(features)


class CoreMLVocoder:
    """Runs a vocoder package with one input (features) and one output (waveform)."""

    backend = "coreML"

    def __init__(self, model: LoadedModel, *, sample_rate: int | None = None) -> None:
        description = model.description
        if len(description.inputs) != 1 or len(description.outputs) != 1:
            raise VocoderShapeConversionFailed(
                [], [], f"a vocoder package has 1 input and 1 output, not {len(description.inputs)}, {len(description.outputs)}"
            )
        self.model: LoadedModel | None = model
        self.input = description.inputs[0]
        self.output = description.outputs[0]
        declared = description.metadata.get(SAMPLE_RATE_METADATA_KEY)
        package_rate = int(declared) if declared else None
        if package_rate is None and sample_rate is None:
            raise ValueError(f"the package does not record its sample rate ({SAMPLE_RATE_METADATA_KEY}); pass sample_rate")
        # A package produces audio at one rate only: asking for another is the seed's unsupportedSampleRate.
        self.sample_rate = _check_rate(sample_rate or package_rate, (package_rate or sample_rate,))  # type: ignore[arg-type]
        self._output = np.empty(self.output.shape, dtype=self.output.dtype)
        self._lock = threading.Lock()

    def decode(self, features: mx.array) -> mx.array:
        """Features of the package's exact shape -> waveform as an MLX array."""
        model = self.model
        if model is None:
            raise ModelNotLoaded("Core ML vocoder")
        expected = list(self.input.shape)
        got = list(features.shape)
        if got != expected:
            raise VocoderShapeConversionFailed(expected, got)
        if features.dtype == mx.bfloat16:
            features = features.astype(mx.float32)
        mx.eval(features)
        feed = np.ascontiguousarray(np.asarray(features), dtype=self.input.dtype)
        with self._lock:
            try:
                result = model.predict({self.input.name: feed}, {self.output.name: self._output})
            except TensorValidationError as exc:
                raise VocoderShapeConversionFailed(expected, got, str(exc)) from exc
            except Exception as exc:
                raise VocoderCoreMLInferenceFailed(exc) from exc
            return mx.array(result.outputs.get(self.output.name, self._output))

    def close(self) -> None:
        model, self.model = self.model, None
        if model is not None:
            model.close()
