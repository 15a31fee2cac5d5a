"""One call through a loaded Core ML model: the path the encoder and the vocoder share.

    call = CoreMLCall(model, CallErrors(ShapeConversionFailed, CoreMLInferenceFailed))
    outputs = call.run({"mel": mel}, got=list(mel.shape), expected=[1, 80, 3000])

What every Core ML component needs, written once:
- inputs are MLX arrays already shaped for the package; a model that computes with MLX itself (the
  portable runtime's `predict_mlx`) takes them as they are. Any other runtime (apple, coremltools)
  gets numpy: a view of MLX's memory when the dtype already matches (no copy), else one cast;
- outputs go into buffers allocated for this call only (weights are shared, state is per call), so
  concurrent callers of one model never wait on each other here; the apple runtime writes into
  them directly when Core ML honours output backings;
- `transform` reshapes each output on its way out (numpy or MLX), before the one copy into MLX;
- failures become the component's seed errors: tensor checks -> its ShapeConversionFailed
  (expected, got), anything else -> its CoreMLInferenceFailed(underlying); an output holding NaN or
  Inf is an inference failure too (NonFiniteOutput), so a fallback switch moves to MLX.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import mlx.core as mx
import numpy as np

from ..errors import NonFiniteOutput, TensorShapeMismatch, TensorValidationError
from .runtime import LoadedModel

Transform = Callable[[Any], Any]  # numpy or MLX array in, same kind out


@dataclass(frozen=True)
class CallErrors:
    """The two seed errors a component raises: `shape(expected, got, detail)` and `inference(underlying)`."""

    shape: Callable[..., Exception]
    inference: Callable[[BaseException], Exception]


def _identity(array: Any) -> Any:
    return array


def all_finite(array: mx.array) -> bool:
    """No NaN or Inf in an evaluated array. Read through numpy (a view of MLX's memory on the CPU):
    MLX's isfinite + all costs 10-40 ms on a large-v3 state on the CPU, numpy under 1 ms; float16 is
    checked on its exponent bits (all ones: Inf or NaN), as numpy's isfinite widens it first."""
    if array.dtype == mx.bfloat16:  # numpy has no bfloat16
        return bool(mx.all(mx.isfinite(array)).item())
    values = np.asarray(array)
    if values.dtype == np.float16:
        return not bool(np.any((values.view(np.uint16) & 0x7C00) == 0x7C00))
    if values.dtype.kind != "f":
        return True
    return bool(np.isfinite(values).all())


class CoreMLCall:
    """Feeds one loaded model and reads its outputs; holds no per-call state, so it is thread-safe."""

    def __init__(self, model: LoadedModel, errors: CallErrors) -> None:
        self.model = model
        self.errors = errors
        self.outputs = {t.name: t for t in model.description.outputs}
        self.inputs = {t.name: t for t in model.description.inputs}

    def run(
        self,
        feeds: Mapping[str, mx.array],
        *,
        expected: list[int],
        got: list[int],
        transform: Transform = _identity,
    ) -> dict[str, mx.array]:
        """Every output by name as an evaluated MLX array. `expected`/`got` name the caller's shapes
        in a ShapeConversionFailed raised by the runtime's tensor checks."""
        predict_mlx = getattr(self.model, "predict_mlx", None)  # looked up per call: wrappers may swap it
        with self._typed_failures(expected, got):
            if callable(predict_mlx):
                produced = cast(Callable[[Mapping[str, mx.array]], Mapping[str, mx.array]], predict_mlx)(feeds)
                outputs = {name: transform(produced[name]) for name in self.outputs}
                mx.eval(*outputs.values())  # inside the guard: a failure while computing is an inference failure
            else:
                outputs = self._run_numpy(feeds, transform)
            for name, value in outputs.items():
                if not all_finite(value):
                    raise NonFiniteOutput(name)
            return outputs

    def _run_numpy(self, feeds: Mapping[str, mx.array], transform: Transform) -> dict[str, mx.array]:
        arrays = [
            a.astype(mx.float32) if a.dtype == mx.bfloat16 else a for a in feeds.values()
        ]  # numpy has no bfloat16
        mx.eval(*arrays)
        numpy_feeds = {
            name: np.ascontiguousarray(np.asarray(array), dtype=self._input_dtype(name, array))  # a view when it can
            for name, array in zip(feeds, arrays)
        }
        buffers = {name: np.empty(spec.shape, dtype=spec.dtype) for name, spec in self.outputs.items()}  # this call's
        result = self.model.predict(numpy_feeds, buffers)
        return {name: mx.array(transform(result.outputs.get(name, buffers[name]))) for name in buffers}  # the one copy

    def _input_dtype(self, name: str, array: mx.array) -> np.dtype:
        spec = self.inputs.get(name)
        return np.dtype(spec.dtype) if spec is not None else np.asarray(array).dtype

    @contextmanager
    def _typed_failures(self, expected: list[int], got: list[int]) -> Iterator[None]:
        try:
            yield
        except TensorShapeMismatch as exc:
            raise self.errors.shape(exc.expected, exc.got, str(exc)) from exc
        except TensorValidationError as exc:
            raise self.errors.shape(expected, got, str(exc)) from exc
        except Exception as exc:  # the runtime's own failure: the seed's coreMLInferenceFailed
            raise self.errors.inference(exc) from exc
