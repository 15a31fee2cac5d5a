"""Bad packages and bad tensors give typed errors: at load for the package, at predict for tensors,
and nothing is written into a caller's buffer when validation fails."""

from __future__ import annotations

import numpy as np
import pytest
from coremltools.proto import Model_pb2  # noqa: E402
from portable_helpers import load, mb, save_program

from mlx_audio_coreml.coreml.portable import PortableRuntime
from mlx_audio_coreml.errors import (
    MissingTensor,
    PackageError,
    TensorDtypeMismatch,
    TensorLayoutError,
    TensorShapeMismatch,
    UnknownTensorName,
    UnsupportedOp,
)

W = np.random.default_rng(4).standard_normal((64, 32)).astype(np.float32)
SPEC = "Data/com.apple.CoreML/model.mlmodel"


@pytest.fixture
def package(tmp_path):
    return save_program(tmp_path, lambda x: mb.relu(x=mb.linear(x=x, weight=W)), [(2, 32)])


def test_truncated_weight_file_fails_at_load(package):
    weights = package / "Data/com.apple.CoreML/weights/weight.bin"
    weights.write_bytes(weights.read_bytes()[:200])
    with pytest.raises(PackageError, match="truncated"):
        load(package)


def test_missing_weight_file_fails_at_load(package):
    (package / "Data/com.apple.CoreML/weights/weight.bin").unlink()
    with pytest.raises(PackageError, match="missing"):
        load(package)


def test_unknown_op_fails_at_load_with_op_and_opset(package):
    spec = Model_pb2.Model()
    spec.ParseFromString((package / SPEC).read_bytes())
    main = spec.mlProgram.functions["main"]
    block = main.block_specializations[main.opset]
    relu = next(op for op in block.operations if op.type == "relu")
    relu.type = "frobnicate"
    (package / SPEC).write_bytes(spec.SerializeToString())
    with pytest.raises(UnsupportedOp) as caught:
        load(package)
    assert caught.value.op == "frobnicate"
    assert caught.value.opset == main.opset == "CoreML7"


def test_garbage_spec_and_missing_folder_are_package_errors(package, tmp_path):
    (package / SPEC).write_bytes(b"\x00not a protobuf\xff" * 10)
    with pytest.raises(PackageError):
        load(package)
    with pytest.raises(PackageError):
        PortableRuntime().load(tmp_path / "nowhere.mlpackage")


def test_tensor_errors_are_typed(package):
    model = load(package)
    x = np.zeros((2, 32), np.float32)
    with pytest.raises(MissingTensor):
        model.predict({})
    with pytest.raises(UnknownTensorName) as unknown:
        model.predict({"x": x, "y": x})
    assert unknown.value.known == ["x"]
    with pytest.raises(TensorShapeMismatch) as shape:
        model.predict({"x": np.zeros((2, 31), np.float32)})
    assert (shape.value.expected, shape.value.got) == ([2, 32], [2, 31])
    with pytest.raises(TensorDtypeMismatch):
        model.predict({"x": x.astype(np.float16)})


def test_bad_output_buffers_are_rejected_before_anything_runs(package):
    model = load(package)
    x = np.ones((2, 32), np.float32)
    name = model.description.outputs[0].name
    wrong_shape = np.full((2, 63), 7.0, np.float32)
    with pytest.raises(TensorShapeMismatch):
        model.predict({"x": x}, outputs={name: wrong_shape})
    assert (wrong_shape == 7.0).all()
    with pytest.raises(TensorDtypeMismatch):
        model.predict({"x": x}, outputs={name: np.zeros((2, 64), np.float16)})
    with pytest.raises(TensorLayoutError):
        model.predict({"x": x}, outputs={name: np.zeros((64, 2), np.float32).T})
    with pytest.raises(UnknownTensorName):
        model.predict({"x": x}, outputs={"nope": np.zeros((2, 64), np.float32)})
