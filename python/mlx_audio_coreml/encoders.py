"""The seed's `AudioEncoder` protocol, its MLX and Core ML implementations, and the fallback switch.

An encoder takes a log-mel spectrogram laid out as the seed says, (batch, n_mels, n_frames), and
returns encoder states (batch, n_ctx, d_model) as an MLX array, whichever backend ran it.

`CoreMLAudioEncoder` runs a package through any Core ML runtime (coreml/call.py: the call path it
shares with the vocoder). Packages come in several I/O layouts (ours, whisper.cpp's, WhisperKit's
channels-first one); the model package that knows them (whisper/encoder_layouts.py) hands the
encoder an `EncoderLayout` object, so this module knows no model.

`FallbackEncoder` is what a session gives its pipeline: MLX until a Core ML encoder is switched
in, MLX again (for good) when that one fails while running (coreml/fallback.py).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import mlx.core as mx
import numpy as np

from .coreml.call import CallErrors, CoreMLCall
from .coreml.fallback import FallbackSwitch
from .coreml.runtime import LoadedModel, ModelDescription
from .errors import CoreMLInferenceFailed, ModelNotLoaded, ShapeConversionFailed

# Core ML multi-arrays hold these; anything else cannot be converted (APPLE.md: no bfloat16, and
# int8 only from macOS 26; bfloat16 is cast to float32 on the way).
_CONVERTIBLE = (mx.float32, mx.float16, mx.bfloat16, mx.float64)
_ERRORS = CallErrors(ShapeConversionFailed, CoreMLInferenceFailed)


@runtime_checkable
class AudioEncoder(Protocol):
    """Encodes a mel spectrogram (B, n_mels, n_frames) into encoder states (B, n_ctx, d_model)."""

    backend: str  # "mlx" or "coreML": what actually runs

    def encode(self, mel: mx.array) -> mx.array: ...


class MLXAudioEncoder:
    """Runs an MLX encoder module that takes (B, n_frames, n_mels) (MLX convs are channels-last)."""

    backend = "mlx"

    def __init__(self, module: Any, n_mels: int, n_frames: int = 3000) -> None:
        self.module = module
        self.n_mels = n_mels
        self.n_frames = n_frames

    def encode(self, mel: mx.array) -> mx.array:
        if mel.ndim == 2:
            mel = mel[None]
        if mel.ndim != 3 or mel.shape[1] != self.n_mels or mel.shape[2] != self.n_frames:
            raise ShapeConversionFailed(
                [mel.shape[0] if mel.ndim == 3 else 1, self.n_mels, self.n_frames], list(mel.shape)
            )
        return self.module(mx.transpose(mel, (0, 2, 1)))  # (B, n_frames, n_mels)


class EncoderIO(Protocol):
    """What a package's description says about the encoder it holds."""

    @property
    def batch(self) -> int: ...
    @property
    def n_mels(self) -> int: ...
    @property
    def n_frames(self) -> int: ...
    @property
    def n_ctx(self) -> int: ...
    @property
    def d_model(self) -> int: ...
    @property
    def input_dtype(self) -> str: ...


class EncoderLayout(Protocol):
    """One I/O convention of encoder packages, supplied by the model package (the adapter)."""

    @property
    def name(self) -> str: ...
    @property
    def input_name(self) -> str: ...
    @property
    def output_name(self) -> str: ...
    @property
    def output_channels_first(self) -> bool: ...

    def shapes(self, description: ModelDescription) -> EncoderIO: ...

    def to_input(self, mel: Any, dtype: str) -> Any:
        """A mel (B, n_mels, frames) as the package's input array of `dtype` (numpy or MLX in, same out)."""
        ...

    def from_output(self, states: Any) -> Any:
        """The package's output as encoder states (B, n_ctx, D), dtype unchanged."""
        ...


class CoreMLAudioEncoder:
    """Runs an encoder package through a `LoadedModel`. Thread-safe and lock-free; `close()` frees it."""

    backend = "coreML"

    def __init__(
        self, model: LoadedModel, *, layout: EncoderLayout, output_dtype: mx.Dtype | None = None, runtime: str = ""
    ) -> None:
        self.model: LoadedModel | None = model
        self.layout = layout
        self.shapes = layout.shapes(model.description)  # UnknownEncoderLayout when it is not that layout
        self.output_dtype = output_dtype  # None: the package's output dtype
        self.runtime = runtime
        self._call = CoreMLCall(model, _ERRORS)

    @property
    def expected_input_shape(self) -> list[int]:
        """The mel shape this encoder takes, in the seed's layout: [1, n_mels, 3000]."""
        return [self.shapes.batch, self.shapes.n_mels, self.shapes.n_frames]

    @property
    def n_mels(self) -> int:
        return self.shapes.n_mels

    @property
    def neural_engine_compiled(self) -> bool:
        return bool(self.model is not None and self.model.neural_engine_compiled)

    def fit_problem(self, n_mels: int, n_ctx: int, d_model: int, n_frames: int = 3000) -> str:
        """Why this package cannot serve a model of these dimensions, or '' when it can."""
        want = (n_mels, n_frames, n_ctx, d_model)
        got = (self.shapes.n_mels, self.shapes.n_frames, self.shapes.n_ctx, self.shapes.d_model)
        if want == got:
            return ""
        return f"Core ML package does not fit the model: (n_mels, frames, n_ctx, D) is {got}, the model needs {want}"

    def encode(self, mel: mx.array) -> mx.array:
        """(B, n_mels, n_frames) -> (B, n_ctx, D). Raises ShapeConversionFailed, CoreMLInferenceFailed."""
        if self.model is None:
            raise ModelNotLoaded("Core ML encoder")
        mel = self._checked(mel)
        # The package has a fixed batch (1 for every published layout): larger batches go item by item.
        step = self.shapes.batch
        parts = [self._encode_batch(mel[start : start + step]) for start in range(0, mel.shape[0], step)]
        states = parts[0] if len(parts) == 1 else mx.concatenate(parts, axis=0)  # (B, n_ctx, D)
        return states if self.output_dtype is None else states.astype(self.output_dtype)

    def prewarm(self) -> None:
        """One prediction on zeros; raises CoreMLInferenceFailed when it fails or gives NaN/Inf."""
        self.encode(mx.zeros(self.expected_input_shape))  # the call path evaluates and checks the output

    def close(self) -> None:
        model, self.model = self.model, None
        if model is not None:
            model.close()

    def _checked(self, mel: Any) -> mx.array:
        """The mel as an MLX array (B, n_mels, n_frames) this package can take, or ShapeConversionFailed."""
        if not isinstance(mel, mx.array):
            mel = mx.array(np.asarray(mel))
        if mel.ndim == 2:
            mel = mel[None]  # (1, n_mels, n_frames)
        expected = self.expected_input_shape
        got = list(mel.shape)
        batch_ok = mel.ndim == 3 and got[0] >= 1 and got[0] % self.shapes.batch == 0
        if not batch_ok or got[1:] != expected[1:]:
            raise ShapeConversionFailed(expected, got)
        if mel.dtype not in _CONVERTIBLE:
            raise ShapeConversionFailed(expected, got, f"dtype {mel.dtype} cannot become a Core ML multi-array")
        return mel

    def _encode_batch(self, mel: mx.array) -> mx.array:
        """One package-sized batch through the shared call path: (b, n_ctx, D)."""
        layout = self.layout
        feed = layout.to_input(mel, self.shapes.input_dtype)  # (b, n_mels, [1,] frames)
        outputs = self._call.run(
            {layout.input_name: feed}, expected=self.expected_input_shape, got=list(mel.shape), transform=self._states
        )
        return outputs[layout.output_name]

    def _states(self, produced: Any) -> Any:
        """The package's output as row-major states (b, n_ctx, D); numpy or MLX, as it came."""
        states = self.layout.from_output(produced)
        if isinstance(states, mx.array) and self.layout.output_channels_first:
            states = mx.contiguous(states)  # row-major, as the numpy path's copy gives
        return states


class FallbackEncoder(FallbackSwitch[AudioEncoder, CoreMLAudioEncoder]):
    """The encoder a session hands its pipeline (`.backend` says which runs now). Thread-safe."""

    failures = (CoreMLInferenceFailed, ModelNotLoaded)

    def encode(self, mel: mx.array) -> mx.array:
        return self._call(lambda coreml: coreml.encode(mel), lambda mlx: mlx.encode(mel))
