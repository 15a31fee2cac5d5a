"""Building Core ML packages, and decoding/transcription options and outputs."""

from __future__ import annotations

from collections.abc import Sequence

from ._base import MlxAudioCoreMLError


class ConversionError(MlxAudioCoreMLError):
    """Building a Core ML package failed; nothing was left at the destination."""


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


class InvalidConversionOption(ConversionError):
    """A conversion option's value is not one the converter offers."""

    def __init__(self, name: str, value: object, choices: Sequence[object]) -> None:
        self.name = name
        self.value = value
        self.choices = list(choices)
        super().__init__(f"invalid {name}={value!r}; choose one of {self.choices}")


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
