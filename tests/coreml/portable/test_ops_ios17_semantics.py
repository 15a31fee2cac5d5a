"""iOS17 op semantics that differ from earlier opsets: integer matmul, reshape's 0 counted from
the right, nearest-neighbour `resize` on the sampling grid, scatter's bounds (validated or
dropped); and iOS17's activation quantize/dequantize."""

from __future__ import annotations

import numpy as np
import pytest
from portable_helpers import ct, load, mb, run_program, save_program

from mlx_audio_coreml.errors import PredictionFailed

IOS16, IOS17 = ct.target.iOS16, ct.target.iOS17
INT32 = ct.converters.mil.mil.types.int32


def test_int32_matmul_is_exact_and_stays_int32(tmp_path):
    x = np.random.default_rng(0).integers(-3000, 3000, (3, 5)).astype(np.int32)
    y = np.random.default_rng(1).integers(-3000, 3000, (5, 4)).astype(np.int32)
    (out,) = run_program(tmp_path, lambda a: mb.matmul(x=a, y=y), [x], opset=IOS17, input_dtypes=[INT32])
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, x @ y)


def test_int32_by_float16_matmul_gives_the_declared_int32(tmp_path):
    """A non-constant int32 x times a constant float16 y is declared int32 (the type of x)."""
    x = np.arange(10, dtype=np.int32).reshape(2, 5)
    y = np.arange(15, dtype=np.float16).reshape(5, 3)
    (out,) = run_program(tmp_path, lambda a: mb.matmul(x=a, y=y), [x], opset=IOS17, input_dtypes=[INT32])
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, x @ y.astype(np.int32))


@pytest.mark.parametrize(
    "opset,shape,expected",
    [
        (IOS17, [1, 0, -1, 0], (1, 1, 2, 3)),  # zeros matched from the right; one past the input's rank is 1
        (IOS17, [0, 3, 2], (1, 3, 2)),
        (IOS16, [0, 0], (2, 3)),  # same rank: copied in place
    ],
)
def test_reshape_zero_copies_input_dimensions(tmp_path, opset, shape, expected):
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    (out,) = run_program(tmp_path, lambda a: mb.reshape(x=a, shape=shape), [x], opset=opset)
    assert out.shape == expected
    np.testing.assert_array_equal(out.reshape(-1), x.reshape(-1))


def test_resize_nearest_neighbour_rounds_to_the_nearest_source(tmp_path):
    x = np.array([-6.0, 9.0], dtype=np.float32).reshape(1, 1, 2, 1)

    def build(a):
        return mb.resize(x=a, shape=[1, 1, 3, 2], resized_dims=np.uint32(2), interpolation_mode="NEAREST_NEIGHBOR")

    (out,) = run_program(tmp_path, build, [x], opset=IOS17)
    np.testing.assert_array_equal(out.reshape(3, 2), [[-6, -6], [9, 9], [9, 9]])


DATA = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.float32)
UPDATES = np.array([[5, 6, 7], [8, 9, 10]], dtype=np.float32)


def _scatter_model(tmp_path, opset, validate):
    def build(data, indices, updates):
        kwargs = {"validate_indices": validate} if opset == IOS17 else {}
        return mb.scatter(data=data, indices=indices, updates=updates, mode="add", **kwargs)

    types = ct.converters.mil.mil.types
    path = save_program(
        tmp_path,
        build,
        [DATA.shape, (2,), UPDATES.shape],
        opset=opset,
        input_dtypes=[types.fp32, types.int32, types.fp32],
    )
    return load(path)


def _scatter(model, indices):
    feeds = {"data": DATA, "indices": np.array(indices, np.int32), "updates": UPDATES}
    return next(iter(model.predict(feeds).outputs.values()))


def test_ios17_scatter_drops_out_of_bound_updates_when_not_validated(tmp_path):
    model = _scatter_model(tmp_path, IOS17, validate=False)
    for indices in ([-1, 0], [10, 0]):  # negative indices are out of bounds from iOS17 on
        np.testing.assert_array_equal(_scatter(model, indices), [[9, 11, 13], [4, 5, 6]])
    np.testing.assert_array_equal(_scatter(model, [1, 0]), [[9, 11, 13], [9, 11, 13]])


def test_ios17_scatter_with_validation_fails_the_prediction(tmp_path):
    model = _scatter_model(tmp_path, IOS17, validate=True)
    np.testing.assert_array_equal(_scatter(model, [1, 0]), [[9, 11, 13], [9, 11, 13]])
    with pytest.raises(PredictionFailed, match="out of bounds"):
        _scatter(model, [-1, 0])
    np.testing.assert_array_equal(_scatter(model, [0, 1]), [[6, 8, 10], [12, 14, 16]])  # usable afterwards


def test_scatter_before_ios17_wraps_negative_indices(tmp_path):
    model = _scatter_model(tmp_path, IOS16, validate=None)
    np.testing.assert_array_equal(_scatter(model, [-1, 0]), [[9, 11, 13], [9, 11, 13]])


def test_quantize_then_dequantize_per_channel(tmp_path):
    x = np.random.default_rng(2).uniform(-3, 3, (2, 3, 4)).astype(np.float32)
    scale = np.array([0.02, 0.05, 0.1], np.float32)
    zero = np.array([3, -2, 0], np.int8)

    def build(a):
        q = mb.quantize(input=a, scale=scale, zero_point=zero, axis=1, output_dtype="int8")
        return q, mb.dequantize(input=q, scale=scale, zero_point=zero, axis=1)

    q, back = run_program(tmp_path, build, [x], opset=IOS17)
    s, z = scale.reshape(1, 3, 1), zero.reshape(1, 3, 1).astype(np.float32)
    want = np.clip(np.round(x / s) + z, -128, 127)
    assert q.dtype.kind == "i"  # int8 in the program; coremltools casts outputs to int32
    np.testing.assert_array_equal(q, want)
    np.testing.assert_allclose(back, (want - z) * s, rtol=1e-6)
