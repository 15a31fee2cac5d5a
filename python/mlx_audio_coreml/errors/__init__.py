"""Every exception the package raises: one class per failure, each with the fields a caller needs.

The seed's Swift enums map to classes here: `EncoderError.shapeConversionFailed(expected:got:)`
is `ShapeConversionFailed(expected, got)`, a subclass of `EncoderError`; the vocoder's twins carry
a `Vocoder` prefix so both can be imported side by side. Import them from here
(`from mlx_audio_coreml.errors import ...`); the submodules only group them by area.
"""

from __future__ import annotations

from ._base import MlxAudioCoreMLError
from .seed import EncoderError, ShapeConversionFailed, CoreMLInferenceFailed, ANENotAvailable, ModelNotLoaded, VocoderError, VocoderShapeConversionFailed, VocoderCoreMLInferenceFailed, UnsupportedSampleRate
from .coreml import CoreMLError, CoreMLRuntimeUnavailable, NativeError, NativeLibraryUnavailable, ABIVersionMismatch, ModelLoadFailed, ANECompilationError, ANECompilationTimeout, ANECompilationCancelled, TensorValidationError, TensorShapeMismatch, TensorDtypeMismatch, TensorLayoutError, TensorBufferTooSmall, TensorNullPointer, UnknownTensorName, MissingTensor, StateError, StateRequired, StateMismatch, PredictionFailed, NonFiniteOutput, PackageError, UnsupportedOp, MILTextError, UnknownEncoderLayout, CPUKernelFailed
from .models import ModelError, ModelNotFound, UnsupportedModelFormat, WeightsMismatch, QuantizationFailed, CorruptModelFile, DownloadError, NetworkError, CorruptDownload, AudioError, AudioDecodeError, EmptyAudio, NonFiniteAudio
from .conversion import ConversionError, UnsupportedModelForConversion, ConversionFailed, ConversionValidationFailed, ConversionDestinationExists, InvalidConversionOption, DecodingError, InvalidOption, OutputWriteError
from .audio import AudioWriteError, UnsupportedAudioFormat, AudioEncoderUnavailable
from .inputs import ImplausibleSampleRate, DuplicateInput, BatchFailed
from .kokoro import KokoroError, KokoroConfigError, KokoroStateMismatch, KokoroInputError, KokoroTextError, EmptyText, UnknownPhoneme, WordTooLong, PhonemizerUnavailable, UnsupportedLanguage, SpeedOutOfRange, KokoroWeightsError, UnsupportedKokoroFormat, UnsafePickle, KokoroGraphError, UnknownVoice, InvalidVoiceSpec
from .vad import VadError, VadModelMissing, VadUnavailable
from .batch import BatchError, ManifestError, RayUnavailable
from .session import CoreMLRequired
from .serve import ServeError, InvalidRequest, ModelNotServed, UploadTooLarge, QueueFull, Unauthorized, ShuttingDown

__all__ = [
    "MlxAudioCoreMLError",
    "EncoderError",
    "ShapeConversionFailed",
    "CoreMLInferenceFailed",
    "ANENotAvailable",
    "ModelNotLoaded",
    "VocoderError",
    "VocoderShapeConversionFailed",
    "VocoderCoreMLInferenceFailed",
    "UnsupportedSampleRate",
    "CoreMLError",
    "CoreMLRuntimeUnavailable",
    "NativeError",
    "NativeLibraryUnavailable",
    "ABIVersionMismatch",
    "ModelLoadFailed",
    "ANECompilationError",
    "ANECompilationTimeout",
    "ANECompilationCancelled",
    "TensorValidationError",
    "TensorShapeMismatch",
    "TensorDtypeMismatch",
    "TensorLayoutError",
    "TensorBufferTooSmall",
    "TensorNullPointer",
    "UnknownTensorName",
    "MissingTensor",
    "StateError",
    "StateRequired",
    "StateMismatch",
    "PredictionFailed",
    "NonFiniteOutput",
    "PackageError",
    "UnsupportedOp",
    "MILTextError",
    "UnknownEncoderLayout",
    "CPUKernelFailed",
    "ModelError",
    "ModelNotFound",
    "UnsupportedModelFormat",
    "WeightsMismatch",
    "QuantizationFailed",
    "CorruptModelFile",
    "DownloadError",
    "NetworkError",
    "CorruptDownload",
    "AudioError",
    "AudioDecodeError",
    "EmptyAudio",
    "NonFiniteAudio",
    "ConversionError",
    "UnsupportedModelForConversion",
    "ConversionFailed",
    "ConversionValidationFailed",
    "ConversionDestinationExists",
    "InvalidConversionOption",
    "DecodingError",
    "InvalidOption",
    "OutputWriteError",
    "AudioWriteError",
    "UnsupportedAudioFormat",
    "AudioEncoderUnavailable",
    "ImplausibleSampleRate",
    "DuplicateInput",
    "BatchFailed",
    "KokoroError",
    "KokoroConfigError",
    "KokoroStateMismatch",
    "KokoroInputError",
    "KokoroTextError",
    "EmptyText",
    "UnknownPhoneme",
    "WordTooLong",
    "PhonemizerUnavailable",
    "UnsupportedLanguage",
    "SpeedOutOfRange",
    "KokoroWeightsError",
    "UnsupportedKokoroFormat",
    "UnsafePickle",
    "KokoroGraphError",
    "UnknownVoice",
    "InvalidVoiceSpec",
    "VadError",
    "VadModelMissing",
    "VadUnavailable",
    "BatchError",
    "ManifestError",
    "RayUnavailable",
    "ServeError",
    "InvalidRequest",
    "ModelNotServed",
    "UploadTooLarge",
    "QueueFull",
    "Unauthorized",
    "ShuttingDown",
    "CoreMLRequired",
]
