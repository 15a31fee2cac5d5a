"""The seed design's encoder and vocoder errors (`EncoderError.shapeConversionFailed(expected:got:)` is
`ShapeConversionFailed(expected, got)`; the vocoder's twins carry a `Vocoder` prefix)."""

from __future__ import annotations

from collections.abc import Sequence

from ._base import InferenceFailureBase, MlxAudioCoreMLError, ShapeConversionBase


class EncoderError(MlxAudioCoreMLError):
    """An `AudioEncoder` could not encode the mel it was given."""


class ShapeConversionFailed(ShapeConversionBase, EncoderError):
    """The mel's shape (or dtype) cannot be handed to the encoder's model."""


class CoreMLInferenceFailed(InferenceFailureBase, EncoderError):
    """Core ML (or the runtime standing in for it) failed while running the encoder."""


class ANENotAvailable(EncoderError):
    """The Neural Engine was required but this machine has none."""

    def __init__(self, reason: str = "ANE not supported") -> None:
        self.reason = reason
        super().__init__(reason)


class ModelNotLoaded(EncoderError):
    """`encode` was called before the encoder's model finished loading (or after it was closed)."""

    def __init__(self, what: str = "encoder") -> None:
        self.what = what
        super().__init__(f"{what} model is not loaded")


class VocoderError(MlxAudioCoreMLError):
    """An `AudioVocoder` could not decode the features it was given."""


class VocoderShapeConversionFailed(ShapeConversionBase, VocoderError):
    """The features' shape cannot be handed to the vocoder's model."""


class VocoderCoreMLInferenceFailed(InferenceFailureBase, VocoderError):
    """Core ML failed while running the vocoder."""


class UnsupportedSampleRate(VocoderError):
    """The vocoder cannot produce audio at the requested sample rate."""

    def __init__(self, sample_rate: int, supported: Sequence[int] = ()) -> None:
        self.sample_rate = int(sample_rate)
        self.supported = [int(s) for s in supported]
        hint = f" (supported: {self.supported})" if self.supported else ""
        super().__init__(f"unsupported sample rate {self.sample_rate}{hint}")
