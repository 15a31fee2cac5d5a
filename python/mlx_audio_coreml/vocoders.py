"""The seed's `AudioVocoder` protocol: acoustic features in, waveform out, on MLX or Core ML.

The features are Kokoro's decoder inputs (`VocoderFeatures`: aligned text features, F0, energy,
style). `MLXVocoder` runs the MLX decoder (`kokoro.model.decoder.Decoder`, iSTFTNet with its
harmonic source) with a fixed noise seed; `CoreMLVocoder` runs a vocoder package with the same
four named inputs through any Core ML runtime, on the call path the encoder shares (coreml/call.py).
`FallbackVocoder` is what a session hands its pipeline (coreml/fallback.py).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Protocol, cast, runtime_checkable

import mlx.core as mx

from .coreml.call import CallErrors, CoreMLCall
from .coreml.fallback import FallbackSwitch
from .coreml.runtime import LoadedModel
from .errors import (
    ModelNotLoaded,
    UnsupportedSampleRate,
    VocoderCoreMLInferenceFailed,
    VocoderShapeConversionFailed,
)

# Package metadata key a converted vocoder records its output rate under.
SAMPLE_RATE_METADATA_KEY = "mlx_audio_coreml.sample_rate"
# Package metadata key naming the package's input for each feature, as JSON ({"asr": "text", ...}),
# when its names are not asr, f0, energy and style.
INPUT_NAMES_METADATA_KEY = "mlx_audio_coreml.input_names"
_ERRORS = CallErrors(VocoderShapeConversionFailed, VocoderCoreMLInferenceFailed)


@dataclass(frozen=True, eq=False)  # arrays compare elementwise: identity equality and hashing instead
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


class CoreMLAudioVocoder(Protocol):
    """What a fallback switch runs on Core ML: `CoreMLVocoder`, or a set of frame buckets
    (kokoro/vocoder_bucket.py)."""

    backend: str
    sample_rate: int

    @property
    def neural_engine_compiled(self) -> bool: ...

    def decode(self, features: VocoderFeatures) -> mx.array: ...

    def prewarm(self) -> None: ...

    def close(self) -> None: ...


class VocoderModule(Protocol):
    """An MLX vocoder: features and a noise key (None: no noise) -> (B, samples) at its own `sample_rate`."""

    sample_rate: int

    def __call__(self, features: VocoderFeatures, key: mx.array | None = None) -> mx.array: ...


def _check_rate(sample_rate: int, supported: Sequence[int]) -> int:
    if sample_rate not in supported:
        raise UnsupportedSampleRate(sample_rate, supported)
    return int(sample_rate)


class MLXVocoder:
    """Runs an MLX vocoder module (Kokoro's `Decoder`) at the one rate it produces.

    The harmonic source's noise comes from `mx.random.key(seed)` on every call, so the same features
    always give the same audio; `seed=None` turns the noise off (as Kokoro's int8 ONNX export runs).
    """

    backend = "mlx"

    def __init__(self, module: VocoderModule, *, sample_rate: int | None = None, seed: int | None = 0) -> None:
        self.module = module
        self.sample_rate = _check_rate(sample_rate or module.sample_rate, (module.sample_rate,))
        self.seed = seed

    def decode(self, features: VocoderFeatures) -> mx.array:
        """features -> audio (B, samples) at `sample_rate`."""
        key = None if self.seed is None else mx.random.key(self.seed)
        return self.module(features, key=key)


class CoreMLVocoder:
    """Runs a vocoder package with one output whose inputs are `VocoderFeatures`' four tensors.

    The inputs are named asr, f0, energy and style unless `input_names` (or the package's metadata
    under INPUT_NAMES_METADATA_KEY) maps a feature to the name the package uses. Features must have
    the package's fixed shapes (a session pads to the bucket).
    Calls go through the path the encoder uses (coreml/call.py): per-call buffers, typed failures,
    NaN/Inf output as an inference failure. Thread-safe and lock-free; `close()` frees the model.
    """

    backend = "coreML"

    def __init__(
        self, model: LoadedModel, *, sample_rate: int | None = None, input_names: Mapping[str, str] | None = None
    ) -> None:
        description = model.description
        renamed = input_names or _declared_input_names(description.metadata)
        self.input_names = {f.name: renamed.get(f.name, f.name) for f in fields(VocoderFeatures)}
        names = sorted(t.name for t in description.inputs)
        if names != sorted(self.input_names.values()) or len(description.outputs) != 1:
            raise VocoderShapeConversionFailed(
                [], [], f"a vocoder package takes inputs {sorted(self.input_names.values())} and has 1 output, "
                f"not {names} and {len(description.outputs)}"
            )  # fmt: skip
        self.model: LoadedModel | None = model
        self.inputs = {t.name: t for t in description.inputs}
        self.output = description.outputs[0]
        declared = description.metadata.get(SAMPLE_RATE_METADATA_KEY)
        package_rate = int(declared) if declared else None
        if package_rate is None and sample_rate is None:
            raise ValueError(
                f"the package does not record its sample rate ({SAMPLE_RATE_METADATA_KEY}); pass sample_rate"
            )
        # A package produces audio at one rate only: asking for another is the seed's unsupportedSampleRate.
        self.sample_rate = _check_rate(sample_rate or package_rate, (package_rate or sample_rate,))  # type: ignore[arg-type]
        self._call = CoreMLCall(model, _ERRORS)

    @property
    def neural_engine_compiled(self) -> bool:
        return bool(self.model is not None and self.model.neural_engine_compiled)

    def input_shape(self, feature: str) -> tuple[int, ...]:
        """The fixed shape the package takes for one of `VocoderFeatures`' fields."""
        return tuple(self.inputs[self.input_names[feature]].shape)

    def decode(self, features: VocoderFeatures) -> mx.array:
        """Features of the package's exact shapes -> waveform as an MLX array."""
        if self.model is None:
            raise ModelNotLoaded("Core ML vocoder")
        feeds: dict[str, mx.array] = {}
        for field_name, value in features.arrays().items():
            name = self.input_names[field_name]
            spec = self.inputs[name]
            if list(value.shape) != list(spec.shape):
                raise VocoderShapeConversionFailed(spec.shape, value.shape, field_name)
            feeds[name] = value
        shape = list(self.inputs[self.input_names["asr"]].shape)
        return self._call.run(feeds, expected=shape, got=list(features.asr.shape))[self.output.name]

    def prewarm(self) -> None:
        """One prediction on zeros; raises VocoderCoreMLInferenceFailed when it fails or gives NaN/Inf."""
        zeros = {f.name: mx.zeros(self.input_shape(f.name)) for f in fields(VocoderFeatures)}
        self.decode(VocoderFeatures(**zeros))  # the call path evaluates and checks the output

    def close(self) -> None:
        model, self.model = self.model, None
        if model is not None:
            model.close()


def _declared_input_names(metadata: Mapping[str, str]) -> dict[str, str]:
    declared = metadata.get(INPUT_NAMES_METADATA_KEY)
    if not declared:
        return {}
    try:
        names: object = json.loads(declared)
    except ValueError:
        raise VocoderShapeConversionFailed([], [], f"{INPUT_NAMES_METADATA_KEY} is not JSON: {declared!r}") from None
    if not isinstance(names, dict):
        raise VocoderShapeConversionFailed([], [], f"{INPUT_NAMES_METADATA_KEY} is not a JSON object: {declared!r}")
    return {str(k): str(v) for k, v in cast(dict[object, object], names).items()}


class FallbackVocoder(FallbackSwitch[AudioVocoder, CoreMLAudioVocoder]):
    """The vocoder a session hands its pipeline: MLX until Core ML is switched in, MLX again for good
    when Core ML fails while running (coreml/fallback.py). Thread-safe."""

    failures = (VocoderCoreMLInferenceFailed, ModelNotLoaded)

    @property
    def sample_rate(self) -> int:
        return self.mlx.sample_rate

    def decode(self, features: VocoderFeatures) -> mx.array:
        return self._call(lambda coreml: coreml.decode(features), lambda mlx: mlx.decode(features))
