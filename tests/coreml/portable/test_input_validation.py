"""The tensor checks shared by the coremltools and portable runtimes (coreml/validation.py): typed
errors for names, shapes, dtypes and buffers, and the one policy in which the runtimes differ."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

import mlx_audio_coreml  # noqa: F401  (fast BLAS before MLX)
from mlx_audio_coreml.coreml.coremltools_runtime import _checked_inputs as coremltools_inputs
from mlx_audio_coreml.coreml.runtime import ModelDescription, TensorSpec
from mlx_audio_coreml.coreml.validation import check_buffers, checked_inputs, dtype_name
from mlx_audio_coreml.errors import (
    MissingTensor,
    TensorDtypeMismatch,
    TensorLayoutError,
    TensorShapeMismatch,
    UnknownTensorName,
)

DESCRIPTION = ModelDescription(
    inputs=(TensorSpec("x", "float32", (2, 3)), TensorSpec("n", "int32", (-1,))),
    outputs=(TensorSpec("y", "float32", (2, 4)),),
)
X = np.zeros((2, 3), np.float32)
N = np.zeros((5,), np.int32)


def test_inputs_come_back_in_description_order_and_minus_one_matches_any_size():
    checked = checked_inputs(DESCRIPTION, {"n": N, "x": X})
    assert [(spec.name, value is original) for (spec, value), original in zip(checked, (X, N))] == [
        ("x", True), ("n", True)
    ]  # fmt: skip


@pytest.mark.parametrize(
    "inputs, error",
    [
        ({"x": X}, MissingTensor),
        ({"x": X, "n": N, "z": X}, UnknownTensorName),
        ({"x": np.zeros((3, 2), np.float32), "n": N}, TensorShapeMismatch),
        ({"x": X, "n": np.zeros((2, 2), np.int32)}, TensorShapeMismatch),
        ({"x": X.astype(np.float64), "n": N}, TensorDtypeMismatch),
        ({"x": mx.zeros((2, 3), dtype=mx.float16), "n": N}, TensorDtypeMismatch),
    ],
)
def test_bad_inputs_raise_typed_errors(inputs, error):
    with pytest.raises(error):
        checked_inputs(DESCRIPTION, inputs)


def test_same_kind_inputs_pass_only_when_the_runtime_converts_them():
    wide = {"x": X.astype(np.float64), "n": N}
    checked_inputs(DESCRIPTION, wide, convert_same_kind=True)
    with pytest.raises(TensorDtypeMismatch):
        checked_inputs(DESCRIPTION, {"x": X.astype(np.int32), "n": N}, convert_same_kind=True)
    feed, copies = coremltools_inputs(DESCRIPTION, wide)  # the coremltools runtime converts
    assert feed["x"].dtype == np.float32 and copies == ["x"]


def test_dtype_names_of_mlx_and_numpy_values():
    assert dtype_name(mx.zeros((1,), dtype=mx.bfloat16)) == "bfloat16"
    assert dtype_name(np.zeros(1, np.float16)) == "float16"
    assert dtype_name([1.0, 2.0]) == "float64"


def test_strict_buffers_need_exact_dtype_and_a_plain_writable_block():
    check_buffers(DESCRIPTION, {"y": np.zeros((2, 4), np.float32)})
    with pytest.raises(UnknownTensorName):
        check_buffers(DESCRIPTION, {"z": np.zeros((2, 4), np.float32)})
    with pytest.raises(TensorShapeMismatch):
        check_buffers(DESCRIPTION, {"y": np.zeros((2, 5), np.float32)}, strict=False)
    with pytest.raises(TensorDtypeMismatch):
        check_buffers(DESCRIPTION, {"y": np.zeros((2, 4), np.float16)})
    with pytest.raises(TensorLayoutError):
        check_buffers(DESCRIPTION, {"y": np.zeros((4, 2), np.float32).T})
    check_buffers(DESCRIPTION, {"y": np.zeros((2, 4), np.float16)}, strict=False)  # cast while copying
