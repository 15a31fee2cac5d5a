"""Models, weights, downloads and audio input."""

from __future__ import annotations

from collections.abc import Sequence

from ._base import MlxAudioCoreMLError


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
        packages = [n for n in (self.path.rstrip("/"), *self.found) if n.endswith((".mlpackage", ".mlmodelc"))]
        hint = (
            (  # a converted package handed over as the model: say where it goes instead
                f"; {packages[0]} is a Core ML package, not a model: give it as coreml_sources "
                "(CLI: --coreml-package) and the Whisper model it was converted from as the model"
            )
            if packages
            else ""
        )
        super().__init__(
            f"no supported Whisper weights in {path} (found {self.found}); expected MLX "
            "(config.json + weights.npz/.safetensors), transformers (model.safetensors) or "
            f"CTranslate2 (model.bin){hint}"
        )


class WeightsMismatch(ModelError):
    """Strict loading found keys the model lacks or lacks keys the model needs."""

    def __init__(self, missing: Sequence[str], unexpected: Sequence[str], shape_errors: Sequence[str] = ()) -> None:
        self.missing = sorted(missing)
        self.unexpected = sorted(unexpected)
        self.shape_errors = list(shape_errors)
        parts: list[str] = []
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
