"""Predictions through the shim built against the CoreML stand-in.

The stand-in executes no model and proves nothing about Core ML: it returns outputs computed by a
trivial declared function (y = scale * x + bias) in the layout and dtype it is told to, and uses,
ignores or rejects output backings on request. These tests show the shim's side: wrapping caller
memory, conversion copies, honouring strides, reporting in-place writes, retrying without
backings, and writing nothing when a descriptor is refused.
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
from native_support import calls

from mlx_audio_coreml.coreml.apple import AppleRuntime
from mlx_audio_coreml.errors import (
    ModelNotLoaded,
    PredictionFailed,
    TensorBufferTooSmall,
    TensorDtypeMismatch,
    TensorLayoutError,
    TensorNullPointer,
    TensorShapeMismatch,
    UnknownTensorName,
)
from mlx_audio_coreml.native import TensorDescriptor

pytestmark = pytest.mark.standin

X = np.arange(24, dtype=np.float32).reshape(1, 4, 6) / 8  # exact in float16 too


@pytest.fixture()
def load(standin_path, tmp_path):
    runtime = AppleRuntime(library_path=standin_path, cache_dir=tmp_path / "compiled")
    loaded = []

    def load_package(package):
        loaded.append(runtime.load(package))
        return loaded[-1]

    yield load_package
    for model in loaded:
        model.close()


def output(name="y", dtype="float32", shape=(1, 4, 6), **extra):
    return {"name": name, "dtype": dtype, "shape": list(shape), "from": "x", "scale": 2.0, "bias": 1.0, **extra}


def test_outputs_follow_the_declared_function(load, make_package) -> None:
    model = load(make_package())
    result = model.predict({"x": X})
    np.testing.assert_array_equal(result.outputs["y"], 2 * X + 1)


def test_description_and_metadata_come_from_the_model(load, make_package) -> None:
    model = load(make_package(outputs=[output(dtype="float16")], metadata={"layout": "default", "sha": "ab"}))
    assert [(t.name, t.dtype, t.shape) for t in model.description.inputs] == [("x", "float32", (1, 4, 6))]
    assert [(t.name, t.dtype, t.shape) for t in model.description.outputs] == [("y", "float16", (1, 4, 6))]
    assert model.description.metadata == {"layout": "default", "sha": "ab"}


@pytest.mark.parametrize("strides", [[64, 16, 1], [24, 1, 4], [96, 24, 4]], ids=["padded", "transposed", "spread"])
def test_float16_strided_outputs_land_in_float32_buffers(load, make_package, strides) -> None:
    model = load(make_package(outputs=[output(dtype="float16", strides=strides)]))
    caller = np.full((1, 4, 6), -7.0, np.float32)
    result = model.predict({"x": X}, {"y": caller})
    assert result.outputs["y"] is caller
    assert result.written_in_place == frozenset()  # another dtype: copied and converted by the shim
    np.testing.assert_array_equal(caller, 2 * X + 1)


def test_used_backings_are_written_in_place(load, make_package) -> None:
    package = make_package(backings="use")
    model = load(package)
    caller = np.zeros((1, 4, 6), np.float32)
    result = model.predict({"x": X}, {"y": caller})
    assert result.written_in_place == {"y"}
    np.testing.assert_array_equal(caller, 2 * X + 1)
    assert calls(package)[-1] == "predict backings=1"


def test_ignored_backings_are_copied_honouring_strides(load, make_package) -> None:
    model = load(make_package(backings="ignore", outputs=[output(strides=[48, 12, 2])]))
    caller = np.zeros((1, 4, 6), np.float32)
    result = model.predict({"x": X}, {"y": caller})
    assert result.written_in_place == frozenset()
    np.testing.assert_array_equal(caller, 2 * X + 1)


def test_a_failure_with_backings_retries_without_them(load, make_package) -> None:
    package = make_package(backings="fail")
    model = load(package)
    caller = np.zeros((1, 4, 6), np.float32)
    result = model.predict({"x": X}, {"y": caller})
    np.testing.assert_array_equal(caller, 2 * X + 1)
    assert result.written_in_place == frozenset()
    assert calls(package)[-2:] == ["predict backings=1", "predict backings=0"]
    assert model.info().uses_output_backings is False
    model.predict({"x": X}, {"y": caller})  # backings are no longer offered
    assert calls(package)[-1] == "predict backings=0"


def test_an_input_of_another_float_dtype_is_converted_and_reported(load, make_package) -> None:
    model = load(make_package())
    result = model.predict({"x": X.astype(np.float16)})
    assert result.input_copies == {"x"}
    np.testing.assert_array_equal(result.outputs["y"], 2 * X + 1)


def test_an_input_of_the_model_dtype_is_not_copied(load, make_package) -> None:
    assert load(make_package()).predict({"x": X}).input_copies == frozenset()


def test_a_non_contiguous_input_is_copied_in_python_and_reported(load, make_package) -> None:
    model = load(make_package())
    wide = np.zeros((1, 4, 12), np.float32)
    wide[..., ::2] = X
    result = model.predict({"x": wide[..., ::2]})
    assert result.input_copies == {"x"}
    np.testing.assert_array_equal(result.outputs["y"], 2 * X + 1)


def test_mlx_arrays_are_accepted_as_inputs(load, make_package) -> None:
    result = load(make_package()).predict({"x": mx.array(X)})
    np.testing.assert_array_equal(result.outputs["y"], 2 * X + 1)


def test_an_int64_input_is_refused_before_any_pointer_crosses(load, make_package) -> None:
    package = make_package()
    model = load(package)
    before = len(calls(package))
    with pytest.raises(TensorDtypeMismatch) as caught:
        model.predict({"x": X.astype(np.int64)})
    assert (caught.value.expected, caught.value.got) == ("float32", "int64")
    assert len(calls(package)) == before


def test_a_wrong_shape_is_refused_with_expected_and_got(load, make_package) -> None:
    model = load(make_package())
    with pytest.raises(TensorShapeMismatch) as caught:
        model.predict({"x": X[:, :3]})
    assert (caught.value.expected, caught.value.got) == ([1, 4, 6], [1, 3, 6])


@pytest.mark.parametrize("given", ["readonly", "strided"])
def test_output_buffers_must_be_writable_and_contiguous(load, make_package, given) -> None:
    model = load(make_package())
    buffer = np.zeros((1, 4, 12), np.float32)[..., ::2] if given == "strided" else np.zeros((1, 4, 6), np.float32)
    buffer.flags.writeable = given != "readonly"
    with pytest.raises(TensorLayoutError):
        model.predict({"x": X}, {"y": buffer})


def test_an_unknown_output_name_is_refused(load, make_package) -> None:
    with pytest.raises(UnknownTensorName):
        load(make_package()).predict({"x": X}, {"z": np.zeros(3, np.float32)})


BAD_OUTPUTS = {
    "shape": (TensorShapeMismatch, dict(shape=(1, 6, 4), strides=(24, 4, 1))),
    "negative stride": (TensorLayoutError, dict(strides=(24, 6, -1))),
    "overlap": (TensorLayoutError, dict(strides=(24, 3, 1))),
    "short": (TensorBufferTooSmall, dict(byte_size=95)),
    "dtype": (TensorDtypeMismatch, dict(dtype="int32")),
}


@pytest.mark.parametrize("case", sorted(BAD_OUTPUTS))
def test_a_refused_descriptor_writes_nothing_and_calls_nothing(load, make_package, case) -> None:
    package = make_package(backings="use")
    model = load(package)
    error, changes = BAD_OUTPUTS[case]
    sentinel = np.full(24, 7.0, np.float32)
    fields = dict(name="y", dtype="float32", shape=(1, 4, 6), strides=(24, 6, 1), buffer=sentinel, writable=True)
    fields.update(changes)
    before = calls(package)
    with pytest.raises(error):
        model._model.predict_descriptors([TensorDescriptor.of("x", X)], [TensorDescriptor(**fields)])
    assert (sentinel == 7.0).all()
    assert calls(package) == before


def test_a_null_input_pointer_is_refused(load, make_package) -> None:
    model = load(make_package())
    with pytest.raises(TensorNullPointer):
        model._model.predict_descriptors([TensorDescriptor("x", "float32", (1, 4, 6), (24, 6, 1), None, 96)], [])


def test_a_failing_prediction_raises_prediction_failed_with_core_mls_message(standin, make_package, tmp_path) -> None:
    package = make_package(fail_predict="out of ANE memory")
    with standin.begin_load(package, tmp_path / "c.mlmodelc", prewarm=False) as job:
        assert job.wait(5)
        model = job.take_model()
    with pytest.raises(PredictionFailed, match="out of ANE memory"):
        model.predict({"x": X})
    model.close()


def test_a_closed_model_refuses_to_predict(load, make_package) -> None:
    model = load(make_package())
    model.close()
    with pytest.raises(ModelNotLoaded):
        model.predict({"x": X})
    model.close()  # twice is fine
