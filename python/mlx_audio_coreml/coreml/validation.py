"""Checks a runtime applies to predict's tensors before anything runs: names, shapes, dtypes and
caller buffers against the model's description, each failure a typed TensorValidationError.

Shared by the coremltools and portable runtimes (the apple runtime checks in the shim). What the
runtimes differ in is a policy argument: whether an input of the right kind but another width
(float64 for float32) is converted or refused, and how strict output buffers must be.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from ..errors import MissingTensor, TensorDtypeMismatch, TensorLayoutError, TensorShapeMismatch, UnknownTensorName
from .runtime import ModelDescription, TensorSpec


def dtype_name(value: Any) -> str:
    """The numpy-style dtype name of a numpy array, an MLX array, or anything numpy can read."""
    if isinstance(value, np.ndarray):
        return value.dtype.name
    dtype = getattr(value, "dtype", None)
    if dtype is not None and not isinstance(dtype, np.dtype) and str(dtype).startswith("mlx.core."):
        return str(dtype).removeprefix("mlx.core.")  # an MLX dtype, e.g. mlx.core.float16
    return np.asarray(value).dtype.name


def check_shape(spec: TensorSpec, shape: Iterable[int]) -> None:
    """TensorShapeMismatch unless `shape` fits `spec` (a -1 in the spec matches any size)."""
    shape = tuple(shape)
    fits = len(shape) == len(spec.shape) and all(e in (-1, g) for e, g in zip(spec.shape, shape))
    if not fits:
        raise TensorShapeMismatch(spec.name, spec.shape, shape)


def checked_inputs(
    description: ModelDescription, inputs: Mapping[str, Any], *, convert_same_kind: bool = False
) -> list[tuple[TensorSpec, Any]]:
    """(spec, value) for every input of the description, in its order, once all are checked.

    Raises UnknownTensorName, MissingTensor, TensorShapeMismatch, TensorDtypeMismatch. A value
    whose dtype differs from the spec's is refused, unless `convert_same_kind` and it is of the
    same kind (float for float, int for int): the caller then converts it.
    """
    known = [spec.name for spec in description.inputs]
    for name in inputs:
        if name not in known:
            raise UnknownTensorName(name, known)
    checked = []
    for spec in description.inputs:
        if spec.name not in inputs:
            raise MissingTensor(spec.name)
        value = inputs[spec.name]
        check_shape(spec, value.shape if hasattr(value, "shape") else np.shape(value))
        got = dtype_name(value)
        if got != spec.dtype and not (convert_same_kind and _same_kind(got, spec.dtype)):
            raise TensorDtypeMismatch(spec.name, spec.dtype, got)
        checked.append((spec, value))
    return checked


def check_buffers(description: ModelDescription, buffers: Mapping[str, Any], *, strict: bool = True) -> None:
    """Caller-owned output buffers: known names and fitting shapes; with `strict` also numpy arrays
    of the output's exact dtype, C-contiguous and writable (runtimes that copy in place need all that).
    Raises UnknownTensorName, TensorShapeMismatch, TensorDtypeMismatch, TensorLayoutError."""
    known = [spec.name for spec in description.outputs]
    for name, buffer in buffers.items():
        spec = description.output(name)
        if spec is None:
            raise UnknownTensorName(name, known)
        if strict and not isinstance(buffer, np.ndarray):
            raise TensorLayoutError(name, f"an output buffer must be a numpy array, got {type(buffer).__name__}")
        check_shape(spec, buffer.shape)
        if not strict:
            continue
        if buffer.dtype.name != spec.dtype:
            raise TensorDtypeMismatch(name, spec.dtype, buffer.dtype.name)
        if not buffer.flags.c_contiguous or not buffer.flags.writeable:
            raise TensorLayoutError(name, "an output buffer must be C-contiguous and writable")


def _same_kind(got: str, wanted: str) -> bool:
    try:
        return np.dtype(got).kind == np.dtype(wanted).kind
    except TypeError:  # a dtype numpy does not know (bfloat16): never silently converted
        return False
