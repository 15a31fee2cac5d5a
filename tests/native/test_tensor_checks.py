"""Descriptor validation in the shim (macb_validate_tensors, the same checks macb_predict makes
before touching memory): every bad descriptor is a typed error naming the tensor; nothing crashes.
Runs on the release library, so it needs no Core ML. tests/native/test_standin_predict.py shows the
same checks through predict write nothing."""

from __future__ import annotations

import numpy as np
import pytest

from mlx_audio_coreml.coreml.runtime import TensorSpec
from mlx_audio_coreml.errors import (
    MissingTensor,
    NativeError,
    TensorBufferTooSmall,
    TensorDtypeMismatch,
    TensorLayoutError,
    TensorNullPointer,
    TensorShapeMismatch,
    TensorValidationError,
    UnknownTensorName,
)
from mlx_audio_coreml.native import TensorDescriptor, abi

INPUTS = [TensorSpec("x", "float32", (1, 4, 6)), TensorSpec("mask", "int32", (1, 4))]
OUTPUTS = [TensorSpec("y", "float16", (1, 6, 4))]


@pytest.fixture()
def arrays() -> dict[str, np.ndarray]:
    return {
        "x": np.zeros((1, 4, 6), np.float32),
        "mask": np.zeros((1, 4), np.int32),
        "y": np.zeros((1, 6, 4), np.float16),
    }


def check(lib, inputs, outputs=()) -> None:
    lib.validate_tensors(INPUTS, OUTPUTS, inputs, outputs)


def good_inputs(arrays) -> list[TensorDescriptor]:
    return [TensorDescriptor.of("x", arrays["x"]), TensorDescriptor.of("mask", arrays["mask"])]


def with_x(arrays, **changes) -> list[TensorDescriptor]:
    fields = {"name": "x", "dtype": "float32", "shape": (1, 4, 6), "strides": (24, 6, 1), "buffer": arrays["x"]}
    fields.update(changes)
    return [TensorDescriptor(**fields), TensorDescriptor.of("mask", arrays["mask"])]


def test_valid_descriptors_pass(real_library, arrays) -> None:
    check(real_library, good_inputs(arrays), [TensorDescriptor.of("y", arrays["y"], writable=True)])


def test_float_inputs_of_another_float_dtype_pass(real_library, arrays) -> None:
    """A conversion copy is allowed between float types (the shim reports it at predict)."""
    half = np.zeros((1, 4, 6), np.float16)
    check(real_library, [TensorDescriptor.of("x", half), TensorDescriptor.of("mask", arrays["mask"])])


def test_padded_strides_pass(real_library) -> None:
    padded = np.zeros((1, 4, 8), np.float32)  # rows of 6 laid out every 8 elements
    check(
        real_library,
        [
            TensorDescriptor("x", "float32", (1, 4, 6), (32, 8, 1), padded),
            TensorDescriptor.of("mask", np.zeros((1, 4), np.int32)),
        ],
    )


def test_wrong_rank_carries_expected_and_got(real_library, arrays) -> None:
    with pytest.raises(TensorShapeMismatch) as caught:
        check(real_library, with_x(arrays, shape=(4, 6), strides=(6, 1)))
    assert (caught.value.name, caught.value.expected, caught.value.got) == ("x", [1, 4, 6], [4, 6])


def test_wrong_shape_carries_expected_and_got(real_library, arrays) -> None:
    with pytest.raises(TensorShapeMismatch) as caught:
        check(real_library, with_x(arrays, shape=(1, 4, 5), strides=(20, 5, 1)))
    assert (caught.value.expected, caught.value.got) == ([1, 4, 6], [1, 4, 5])
    assert isinstance(caught.value.__cause__, NativeError)
    assert caught.value.__cause__.status == abi.ERR_TENSOR_SHAPE
    assert "expected [1, 4, 6], got [1, 4, 5]" in caught.value.__cause__.message


def test_wrong_output_shape_names_the_output(real_library, arrays) -> None:
    wrong = np.zeros((1, 4, 6), np.float16)
    with pytest.raises(TensorShapeMismatch) as caught:
        check(real_library, good_inputs(arrays), [TensorDescriptor.of("y", wrong, writable=True)])
    assert (caught.value.name, caught.value.expected, caught.value.got) == ("y", [1, 6, 4], [1, 4, 6])


@pytest.mark.parametrize("dtype", [0, 9, -1])
def test_unknown_dtype_code_is_a_dtype_error(real_library, arrays, dtype) -> None:
    with pytest.raises(TensorDtypeMismatch) as caught:
        check(real_library, with_x(arrays, dtype=dtype))
    assert caught.value.expected == "float32"
    assert caught.value.got == f"dtype code {dtype}"


def test_int_and_float_do_not_convert(real_library, arrays) -> None:
    with pytest.raises(TensorDtypeMismatch) as caught:
        check(real_library, [TensorDescriptor.of("x", arrays["x"]), TensorDescriptor.of("mask", arrays["x"][0])])
    assert (caught.value.name, caught.value.expected, caught.value.got) == ("mask", "int32", "float32")


def test_negative_stride_is_a_layout_error(real_library, arrays) -> None:
    with pytest.raises(TensorLayoutError, match="negative"):
        check(real_library, with_x(arrays, strides=(24, 6, -1)))


@pytest.mark.parametrize("strides", [(24, 3, 1), (24, 0, 1), (24, 1, 1)])
def test_overlapping_strides_are_a_layout_error(real_library, arrays, strides) -> None:
    with pytest.raises(TensorLayoutError, match="overlap"):
        check(real_library, with_x(arrays, strides=strides))


def test_null_pointer_is_its_own_error(real_library, arrays) -> None:
    with pytest.raises(TensorNullPointer) as caught:
        check(real_library, with_x(arrays, buffer=None, byte_size=96))
    assert caught.value.name == "x"


def test_short_buffer_says_how_many_bytes_are_needed(real_library, arrays) -> None:
    with pytest.raises(TensorBufferTooSmall) as caught:
        check(real_library, with_x(arrays, byte_size=95))
    assert (caught.value.needed, caught.value.got) == (96, 95)


def test_strides_reaching_past_the_buffer_are_too_small(real_library, arrays) -> None:
    with pytest.raises(TensorBufferTooSmall) as caught:
        check(real_library, with_x(arrays, strides=(48, 12, 2)))
    assert caught.value.needed == (1 + 3 * 12 + 5 * 2) * 4


def test_unknown_name_lists_the_known_ones(real_library, arrays) -> None:
    with pytest.raises(UnknownTensorName) as caught:
        check(real_library, [*good_inputs(arrays), TensorDescriptor.of("mel", arrays["x"])])
    assert caught.value.name == "mel"
    assert caught.value.known == ["x", "mask"]


def test_missing_input_is_named(real_library, arrays) -> None:
    with pytest.raises(MissingTensor) as caught:
        check(real_library, [TensorDescriptor.of("x", arrays["x"])])
    assert caught.value.name == "mask"


def test_a_name_given_twice_is_an_error(real_library, arrays) -> None:
    with pytest.raises(TensorValidationError, match="given twice"):
        check(real_library, [*good_inputs(arrays), TensorDescriptor.of("x", arrays["x"])])


def test_a_nameless_descriptor_is_an_error(real_library, arrays) -> None:
    with pytest.raises(TensorValidationError):
        check(real_library, with_x(arrays, name=None))


def test_an_output_aliasing_an_input_is_refused(real_library, arrays) -> None:
    shared = np.zeros(64, np.float32)
    x = TensorDescriptor("x", "float32", (1, 4, 6), (24, 6, 1), shared)
    y = TensorDescriptor("y", "float16", (1, 6, 4), (24, 4, 1), shared, writable=True)
    with pytest.raises(TensorLayoutError, match="overlaps"):
        check(real_library, [x, TensorDescriptor.of("mask", arrays["mask"])], [y])


def test_python_refuses_ranks_the_abi_cannot_carry(real_library, arrays) -> None:
    deep = (1,) * 9
    with pytest.raises(TensorLayoutError):
        check(real_library, with_x(arrays, shape=deep, strides=deep))
