"""Every exception the package raises: one class per failure, each with the fields a caller needs.

The seed's Swift enums map to classes here: `EncoderError.shapeConversionFailed(expected:got:)`
is `ShapeConversionFailed(expected, got)`, a subclass of `EncoderError`; the vocoder's twins carry
a `Vocoder` prefix so both can be imported side by side.
"""

from __future__ import annotations

from collections.abc import Sequence


class MlxAudioCoreMLError(Exception):
    """Base of every error this package raises on purpose."""


def _shape(values: Sequence[int]) -> list[int]:
    return [int(v) for v in values]


# --- The seed's encoder errors -------------------------------------------------------------------


class EncoderError(MlxAudioCoreMLError):
    """An `AudioEncoder` could not encode the mel it was given."""


class _ShapeConversion:
    """Fields and message shared by the encoder's and the vocoder's shape conversion failures."""

    def __init__(self, expected: Sequence[int], got: Sequence[int], detail: str = "") -> None:
        self.expected = _shape(expected)
        self.got = _shape(got)
        self.detail = detail
        extra = f": {detail}" if detail else ""
        super().__init__(f"shape conversion failed: expected {self.expected}, got {self.got}{extra}")


class _InferenceFailure:
    """Fields and message shared by the encoder's and the vocoder's Core ML inference failures."""

    def __init__(self, underlying: BaseException) -> None:
        self.underlying = underlying
        super().__init__(f"Core ML inference failed: {underlying}")


class ShapeConversionFailed(_ShapeConversion, EncoderError):
    """The mel's shape (or dtype) cannot be handed to the encoder's model."""


class CoreMLInferenceFailed(_InferenceFailure, EncoderError):
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


# --- The seed's vocoder errors -------------------------------------------------------------------


class VocoderError(MlxAudioCoreMLError):
    """An `AudioVocoder` could not decode the features it was given."""


class VocoderShapeConversionFailed(_ShapeConversion, VocoderError):
    """The features' shape cannot be handed to the vocoder's model."""


class VocoderCoreMLInferenceFailed(_InferenceFailure, VocoderError):
    """Core ML failed while running the vocoder."""


class UnsupportedSampleRate(VocoderError):
    """The vocoder cannot produce audio at the requested sample rate."""

    def __init__(self, sample_rate: int, supported: Sequence[int] = ()) -> None:
        self.sample_rate = int(sample_rate)
        self.supported = [int(s) for s in supported]
        hint = f" (supported: {self.supported})" if self.supported else ""
        super().__init__(f"unsupported sample rate {self.sample_rate}{hint}")


# --- Core ML runtimes and the native shim --------------------------------------------------------


class CoreMLError(MlxAudioCoreMLError):
    """A Core ML runtime (apple, coremltools or portable) failed."""


class CoreMLUnavailable(CoreMLError):
    """A runtime cannot run on this machine; `reason` says why in words fit for a user."""

    def __init__(self, runtime: str, reason: str) -> None:
        self.runtime = runtime
        self.reason = reason
        super().__init__(f"Core ML runtime '{runtime}' unavailable: {reason}")


class NativeError(CoreMLError):
    """A status other than OK from the Swift shim, with the shim's own message."""

    def __init__(self, status: int, message: str, function: str = "") -> None:
        self.status = int(status)
        self.message = message
        self.function = function
        where = f"{function}: " if function else ""
        super().__init__(f"{where}{message} (status {self.status})")


class NativeLibraryUnavailable(CoreMLError):
    """The shim is not built here, or could not be loaded."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"native library unavailable: {reason}")


class ABIVersionMismatch(CoreMLError):
    """The shim on disk speaks another version of the C ABI than this Python code."""

    def __init__(self, expected: int, got: int, path: str = "") -> None:
        self.expected = int(expected)
        self.got = int(got)
        self.path = path
        super().__init__(f"native ABI version mismatch: expected {expected}, got {got} ({path})")


class ModelLoadFailed(CoreMLError):
    """Compiling or loading a Core ML package failed."""

    def __init__(self, path: str, message: str) -> None:
        self.path = str(path)
        self.message = message
        super().__init__(f"could not load {path}: {message}")


class ANECompilationError(CoreMLError):
    """The Neural Engine compile (Core ML compile + load + specialization) did not complete."""


class ANECompilationTimeout(ANECompilationError):
    """The seed's `ANECompilationError.timeout`: the compile outlasted `timeout_s`."""

    def __init__(self, timeout_s: float, stage: str = "") -> None:
        self.timeout_s = float(timeout_s)
        self.stage = stage
        at = f" during {stage}" if stage else ""
        super().__init__(f"Neural Engine compilation timed out after {self.timeout_s:g} s{at}")


class ANECompilationCancelled(ANECompilationError):
    """The compile was cancelled by the caller; the native work is abandoned, not stopped."""

    def __init__(self, stage: str = "") -> None:
        self.stage = stage
        super().__init__("Neural Engine compilation cancelled" + (f" during {stage}" if stage else ""))


class TensorValidationError(CoreMLError):
    """A tensor handed to predict does not fit the model's description; nothing was written."""

    def __init__(self, name: str, message: str) -> None:
        self.name = name
        self.message = message
        super().__init__(f"tensor '{name}': {message}")


class TensorShapeMismatch(TensorValidationError):
    def __init__(self, name: str, expected: Sequence[int], got: Sequence[int]) -> None:
        self.expected = _shape(expected)
        self.got = _shape(got)
        super().__init__(name, f"shape mismatch: expected {self.expected}, got {self.got}")


class TensorDtypeMismatch(TensorValidationError):
    def __init__(self, name: str, expected: str, got: str) -> None:
        self.expected = expected
        self.got = got
        super().__init__(name, f"dtype mismatch: expected {expected}, got {got}")


class TensorLayoutError(TensorValidationError):
    """Strides negative, overlapping or not matching the buffer; or a non-contiguous array."""


class TensorBufferTooSmall(TensorValidationError):
    def __init__(self, name: str, needed: int, got: int) -> None:
        self.needed = int(needed)
        self.got = int(got)
        super().__init__(name, f"buffer too small: needs {needed} bytes, has {got}")


class TensorNullPointer(TensorValidationError):
    """A descriptor's data pointer was NULL (only raw descriptors can send one)."""

    def __init__(self, name: str) -> None:
        super().__init__(name, "data pointer is NULL")


class UnknownTensorName(TensorValidationError):
    def __init__(self, name: str, known: Sequence[str]) -> None:
        self.known = list(known)
        super().__init__(name, f"unknown name; the model has {self.known}")


class MissingTensor(TensorValidationError):
    def __init__(self, name: str) -> None:
        super().__init__(name, "required input is missing")


class StateError(CoreMLError):
    """A stateful model's prediction got no state, or a state it cannot use; nothing was run."""


class StateRequired(StateError):
    """A stateful model was predicted without `state=`: its states must come from `make_state()`."""

    def __init__(self, states: Sequence[str]) -> None:
        self.states = list(states)
        super().__init__(f"the model is stateful (states {self.states}): pass state=model.make_state()")


class StateMismatch(StateError):
    """The state given to predict was made by another model, or the model has no states."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(f"unusable state: {message}")


class PredictionFailed(CoreMLError):
    """The runtime accepted the tensors but the prediction itself failed."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(f"prediction failed: {message}")


class CPUKernelFailed(MlxAudioCoreMLError):
    """A CPU matrix-product library (oneDNN) returned an error status for a call."""

    def __init__(self, function: str, status: int) -> None:
        self.function, self.status = function, status
        super().__init__(f"{function} failed with status {status} (1: out of memory, 2: invalid arguments)")


# --- Models, weights, downloads ------------------------------------------------------------------


class ModelError(MlxAudioCoreMLError):
    """A model could not be found, read or matched to its weights."""


class ModelNotFound(ModelError):
    """No model under that name or path; `hint` says how to get it."""

    def __init__(self, name: str, hint: str) -> None:
        self.name = name
        self.hint = hint
        super().__init__(f"model '{name}' not found. {hint}")


class UnsupportedModelFormat(ModelError):
    def __init__(self, path: str, found: Sequence[str]) -> None:
        self.path = str(path)
        self.found = list(found)
        super().__init__(
            f"no supported Whisper weights in {path} (found {self.found}); expected MLX "
            "(config.json + weights.npz/.safetensors), transformers (model.safetensors) or "
            "CTranslate2 (model.bin)"
        )


class WeightsMismatch(ModelError):
    """Strict loading found keys the model lacks or lacks keys the model needs."""

    def __init__(self, missing: Sequence[str], unexpected: Sequence[str], shape_errors: Sequence[str] = ()) -> None:
        self.missing = sorted(missing)
        self.unexpected = sorted(unexpected)
        self.shape_errors = list(shape_errors)
        parts = []
        if self.missing:
            parts.append(f"missing {self.missing}")
        if self.unexpected:
            parts.append(f"unexpected {self.unexpected}")
        if self.shape_errors:
            parts.append(f"wrong shapes {self.shape_errors}")
        super().__init__("weights do not match the model: " + "; ".join(parts))


class QuantizationFailed(ModelError):
    """The requested quantization could not be applied (and `fallback_to_float16` was off)."""

    def __init__(self, quantization: str, reason: str) -> None:
        self.quantization = quantization
        self.reason = reason
        super().__init__(f"{quantization} quantization failed: {reason}")


class CorruptModelFile(ModelError):
    def __init__(self, path: str, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path} is corrupt: {reason}")


class DownloadError(MlxAudioCoreMLError):
    """A download failed; `cause` is the underlying exception when there is one."""

    def __init__(self, repo_id: str, message: str, cause: BaseException | None = None) -> None:
        self.repo_id = repo_id
        self.message = message
        self.cause = cause
        super().__init__(f"download of {repo_id} failed: {message}")


class NetworkError(DownloadError):
    """The seed's `NetworkError`: the server could not be reached, or the transfer broke."""


class CorruptDownload(DownloadError):
    """A downloaded file's size or hash differs from the hub's metadata; it was deleted, not used."""

    def __init__(self, repo_id: str, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(repo_id, f"{path} is corrupt or incomplete: {reason}")


# --- Audio ---------------------------------------------------------------------------------------


class AudioError(MlxAudioCoreMLError):
    """Audio could not be read or is not usable as speech input."""


class AudioDecodeError(AudioError):
    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"cannot read audio from {source}: {reason}")


class EmptyAudio(AudioError):
    def __init__(self, source: str = "<array>") -> None:
        self.source = source
        super().__init__(f"audio from {source} has no samples")


class NonFiniteAudio(AudioError):
    def __init__(self, source: str = "<array>", count: int = 0) -> None:
        self.source = source
        self.count = int(count)
        super().__init__(f"audio from {source} has {count} NaN or infinite samples")


# --- Conversion and the portable runtime ---------------------------------------------------------


class ConversionError(MlxAudioCoreMLError):
    """Building a Core ML package failed; nothing was left at the destination."""


class PackageError(CoreMLError):
    """A .mlpackage is unreadable, corrupt, or uses what the portable runtime cannot run."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class UnsupportedOp(PackageError):
    """The ML Program uses an op the portable runtime does not implement (raised at load)."""

    def __init__(self, path: str, op: str, opset: str) -> None:
        self.op = op
        self.opset = opset
        super().__init__(path, f"unsupported op '{op}' (opset {opset})")


class UnknownEncoderLayout(CoreMLError):
    """A package's inputs and outputs match none of the encoder layouts in coreml/layouts.py."""

    def __init__(self, found: str, reason: str) -> None:
        self.found = found  # the package's tensors, e.g. "inputs: mel [1, 80, 3000] float16; outputs: ..."
        self.reason = reason
        super().__init__(f"not a known Whisper encoder layout ({found}): {reason}")


class UnsupportedModelForConversion(ConversionError):
    """The model cannot be converted: another architecture, or a shape the converter does not build."""

    def __init__(self, model: str, reason: str) -> None:
        self.model = model
        self.reason = reason
        super().__init__(f"cannot convert {model}: {reason}")


class ConversionFailed(ConversionError):
    """A conversion stage failed; `stage` names it, `cause` is the underlying exception."""

    def __init__(self, stage: str, message: str, cause: BaseException | None = None) -> None:
        self.stage = stage
        self.message = message
        self.cause = cause
        super().__init__(f"conversion failed while {stage}: {message}")


class ConversionValidationFailed(ConversionError):
    """The converted package's output differs from the MLX encoder's by more than the tolerance."""

    def __init__(self, relative_error: float, tolerance: float, runtime: str = "portable") -> None:
        self.relative_error = float(relative_error)
        self.tolerance = float(tolerance)
        self.runtime = runtime
        super().__init__(
            f"the package run by the {runtime} runtime differs from MLX: relative error "
            f"{self.relative_error:.3g} > tolerance {self.tolerance:.3g}"
        )


class ConversionDestinationExists(ConversionError):
    """The output path already holds something and overwriting was not asked for."""

    def __init__(self, path: str) -> None:
        self.path = str(path)
        super().__init__(f"{path} already exists (pass overwrite=True / --overwrite to replace it)")


# --- Decoding and transcription ------------------------------------------------------------------


class DecodingError(MlxAudioCoreMLError):
    """Decoding or transcription could not run with what it was given."""


class InvalidOption(DecodingError):
    """An option's value is out of range, conflicts with another option, or does not suit the model."""

    def __init__(self, name: str, value: object, reason: str) -> None:
        self.name = name
        self.value = value
        self.reason = reason
        super().__init__(f"invalid {name}={value!r}: {reason}")


class OutputWriteError(MlxAudioCoreMLError):
    """A transcript file could not be written; nothing was left at `path`."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot write {path}: {reason}")


class InvalidConversionOption(ConversionError):
    """A conversion option's value is not one the converter offers."""

    def __init__(self, name: str, value: object, choices: Sequence[object]) -> None:
        self.name = name
        self.value = value
        self.choices = list(choices)
        super().__init__(f"invalid {name}={value!r}; choose one of {self.choices}")
