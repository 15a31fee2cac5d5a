"""`CoreMLAudioEncoder`: the seed's Core ML encoder, over a model loaded by any Core ML runtime.

It takes the mel as the seed lays it out, (B, n_mels, 3000), and returns encoder states
(B, n_ctx, D) as an MLX array, whatever the package's layout (coreml/layouts.py: ours,
whisper.cpp's, WhisperKit's channels-first one).

A model that computes with MLX itself (the portable runtime's, which offers
`predict_mlx(inputs) -> dict[str, mx.array]`) gets the mel as an MLX array and hands back MLX
arrays: no numpy on either side. Any other runtime (apple, coremltools) is fed numpy, per call:
- the MLX mel is viewed as numpy without a copy (MLX arrays expose their memory); a copy happens
  only when the package wants another dtype (float16 I/O) or a transposed view is not contiguous;
- the runtime predicts into an output buffer allocated once per encoder (the apple runtime writes
  there directly when Core ML honours output backings);
- one copy turns that buffer into the returned MLX array (and undoes WhisperKit's channels-first
  layout in the same pass).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import mlx.core as mx
import numpy as np

from .coreml.runtime import LoadedModel
from .errors import (
    CoreMLInferenceFailed,
    ModelNotLoaded,
    ShapeConversionFailed,
    TensorShapeMismatch,
    TensorValidationError,
)
from .whisper.encoder_layouts import (
    N_FRAMES,
    EncoderLayout,
    EncoderShapes,
    detect_layout,
)

# Core ML multi-arrays hold these; anything else cannot be converted (APPLE.md: no bfloat16, and
# int8 only from macOS 26).
_CONVERTIBLE = (mx.float32, mx.float16, mx.bfloat16, mx.float64)


class CoreMLAudioEncoder:
    """Runs a Whisper encoder package through a `LoadedModel`. Thread-safe; `close()` frees it."""

    backend = "coreML"

    def __init__(
        self,
        model: LoadedModel,
        *,
        layout: EncoderLayout | None = None,
        output_dtype: mx.Dtype | None = None,
        runtime: str = "",
    ) -> None:
        self.model: LoadedModel | None = model
        self.layout = layout or detect_layout(model.description)  # UnknownEncoderLayout otherwise
        self.shapes: EncoderShapes = self.layout.shapes(model.description)
        self.output_dtype = output_dtype  # None: the package's output dtype
        self.runtime = runtime
        out_shape = self.layout.output_shape(self.shapes.d_model, self.shapes.n_ctx, self.shapes.batch)
        self._output = np.empty(out_shape, dtype=self.shapes.output_dtype)
        self._lock = threading.Lock()  # the output buffer is shared between calls

    @property
    def expected_input_shape(self) -> list[int]:
        """The mel shape this encoder takes, in the seed's layout: [1, n_mels, 3000]."""
        return [self.shapes.batch, self.shapes.n_mels, self.shapes.n_frames]

    @property
    def n_mels(self) -> int:
        return self.shapes.n_mels

    def fit_problem(self, n_mels: int, n_ctx: int, d_model: int) -> str:
        """Why this package cannot serve a model of these dimensions, or '' when it can."""
        want = (n_mels, N_FRAMES, n_ctx, d_model)
        got = (self.shapes.n_mels, self.shapes.n_frames, self.shapes.n_ctx, self.shapes.d_model)
        if want == got:
            return ""
        return f"Core ML package does not fit the model: (n_mels, frames, n_ctx, D) is {got}, the model needs {want}"

    @property
    def neural_engine_compiled(self) -> bool:
        return bool(self.model is not None and self.model.neural_engine_compiled)

    def encode(self, mel: mx.array) -> mx.array:
        """(B, n_mels, n_frames) -> (B, n_ctx, D). Raises ShapeConversionFailed, CoreMLInferenceFailed."""
        model = self.model
        if model is None:
            raise ModelNotLoaded("Core ML encoder")
        mel = self._checked(mel)
        # The package has a fixed batch (1 for every published layout): larger batches go item by item.
        step = self.shapes.batch
        parts = [self._encode_batch(model, mel[start : start + step]) for start in range(0, mel.shape[0], step)]
        states = parts[0] if len(parts) == 1 else mx.concatenate(parts, axis=0)  # (B, n_ctx, D)
        return states if self.output_dtype is None else states.astype(self.output_dtype)

    def close(self) -> None:
        model, self.model = self.model, None
        if model is not None:
            model.close()

    # --- Steps ----------------------------------------------------------------------------------

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

    def _encode_batch(self, model: LoadedModel, mel: mx.array) -> mx.array:
        """One package-sized batch through the runtime, as an MLX array (b, n_ctx, D)."""
        predict_mlx = getattr(model, "predict_mlx", None)
        if callable(predict_mlx):
            return self._encode_batch_mlx(predict_mlx, mel)
        if mel.dtype == mx.bfloat16:  # numpy has no bfloat16
            mel = mel.astype(mx.float32)
        mx.eval(mel)
        source = np.asarray(mel)  # a view of MLX's memory, no copy
        feed = np.ascontiguousarray(self.layout.to_input(source, self.shapes.input_dtype))
        with self._lock, self._typed_failures(mel):
            result = model.predict({self.layout.input_name: feed}, {self.layout.output_name: self._output})
            produced = result.outputs.get(self.layout.output_name, self._output)
            return mx.array(self.layout.from_output(produced))  # the one copy; (b, n_ctx, D)

    def _encode_batch_mlx(self, predict_mlx: Callable[..., Mapping[str, mx.array]], mel: mx.array) -> mx.array:
        """The same through a model that predicts MLX arrays: layout casts and views stay in MLX."""
        feed = self.layout.to_input(mel, self.shapes.input_dtype)  # (b, n_mels, [1,] frames)
        with self._typed_failures(mel):
            produced = predict_mlx({self.layout.input_name: feed})[self.layout.output_name]
            states = self.layout.from_output(produced)  # (b, n_ctx, D)
            if self.layout.output_channels_first:
                states = mx.contiguous(states)  # row-major like the numpy path's copy gives
            mx.eval(states)  # inside the guard: a failure while computing is an inference failure
            return states

    @contextmanager
    def _typed_failures(self, mel: mx.array) -> Iterator[None]:
        """The runtime's errors as the seed's: tensor checks -> ShapeConversionFailed, the rest
        -> CoreMLInferenceFailed."""
        try:
            yield
        except TensorShapeMismatch as exc:
            raise ShapeConversionFailed(exc.expected, exc.got, str(exc)) from exc
        except TensorValidationError as exc:
            raise ShapeConversionFailed(self.expected_input_shape, list(mel.shape), str(exc)) from exc
        except Exception as exc:  # the runtime's own failure: the seed's coreMLInferenceFailed
            raise CoreMLInferenceFailed(exc) from exc


class FallbackEncoder:
    """The encoder a session hands its Transcriber: MLX until a Core ML encoder is switched in, and
    MLX again (for good) if that one fails while running. Thread-safe."""

    def __init__(self, mlx_encoder: Any, on_coreml_failure: Callable[[BaseException], None] | None = None) -> None:
        self.mlx = mlx_encoder
        self.coreml: CoreMLAudioEncoder | None = None
        self.on_coreml_failure = on_coreml_failure
        self._lock = threading.Lock()

    @property
    def backend(self) -> str:
        return "coreML" if self.coreml is not None else "mlx"

    def use_coreml(self, encoder: CoreMLAudioEncoder) -> None:
        with self._lock:
            previous, self.coreml = self.coreml, encoder
        if previous is not None and previous is not encoder:
            previous.close()

    def use_mlx(self) -> None:
        with self._lock:
            previous, self.coreml = self.coreml, None
        if previous is not None:
            previous.close()

    def encode(self, mel: mx.array) -> mx.array:
        coreml = self.coreml
        if coreml is None:
            return self.mlx.encode(mel)
        try:
            return coreml.encode(mel)
        except (CoreMLInferenceFailed, ModelNotLoaded) as exc:
            with self._lock:
                failed = self.coreml is coreml
                if failed:
                    self.coreml = None
            if failed:
                coreml.close()
                if self.on_coreml_failure is not None:
                    self.on_coreml_failure(exc)
            return self.mlx.encode(mel)

    def close(self) -> None:
        self.use_mlx()
