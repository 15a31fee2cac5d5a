"""Reading packages: the description, the weight blob format (checked against coremltools' own
blob reader), and the runtime's place in the registry."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from coremltools.libmilstoragepython import _BlobStorageReader, _BlobStorageWriter  # noqa: E402
from coremltools.proto import MIL_pb2  # noqa: E402
from portable_helpers import ct, load, mb, save_program

from mlx_audio_coreml.coreml.portable.blob import BlobFile
from mlx_audio_coreml.coreml.portable.values import TensorType
from mlx_audio_coreml.coreml.registry import availability, get_runtime
from mlx_audio_coreml.coreml.runtime import CoreMLRuntime, LoadedModel
from mlx_audio_coreml.errors import PackageError

DT = MIL_pb2.DataType
W = np.random.default_rng(3).standard_normal((16, 8)).astype(np.float32)


def _fp16_model(tmp_path):
    return save_program(tmp_path, lambda x: mb.linear(x=x, weight=W), [(2, 8)], precision="fp16")


def test_description_names_dtypes_and_shapes(tmp_path):
    model = load(_fp16_model(tmp_path))
    (inp,), (out,) = model.description.inputs, model.description.outputs
    assert (inp.name, inp.dtype, inp.shape) == ("x", "float32", (2, 8))
    assert (out.dtype, out.shape) == ("float32", (2, 16))
    assert model.description.metadata["com.github.apple.coremltools.source"] == "milinternal"


def test_float16_inputs_are_described_as_float16(tmp_path):
    path = save_program(
        tmp_path,
        lambda x: mb.relu(x=x),
        [(3,)],
        precision="fp16",
        opset=ct.target.iOS16,
        input_dtypes=[ct.converters.mil.mil.types.fp16],
    )
    model = load(path)
    assert model.description.inputs[0].dtype == "float16"
    got = model.predict({"x": np.array([-1, 0.5, 2], np.float16)}).outputs
    np.testing.assert_array_equal(next(iter(got.values())), np.array([0, 0.5, 2], np.float16))


BLOB_CASES = {
    "float": (np.float32, DT.FLOAT32, np.linspace(-1, 1, 7)),
    "fp16": (np.float16, DT.FLOAT16, np.linspace(-1, 1, 7)),
    "int8": (np.int8, DT.INT8, np.arange(-3, 4)),
    "uint8": (np.uint8, DT.UINT8, np.arange(7)),
    "int16": (np.int16, DT.INT16, np.arange(-3, 4)),
    "uint16": (np.uint16, DT.UINT16, np.arange(7)),
    "int32": (np.int32, DT.INT32, np.arange(-3, 4)),
    "uint32": (np.uint32, DT.UINT32, np.arange(7)),
    "int4": (np.int8, DT.INT4, np.array([-8, -1, 0, 3, 7, -5, 2])),
    "uint4": (np.uint8, DT.UINT4, np.array([0, 15, 3, 9, 1, 2, 4])),
    "uint1": (np.uint8, DT.UINT1, np.array([1, 0, 1, 1, 0, 0, 1])),
    "uint2": (np.uint8, DT.UINT2, np.array([3, 0, 1, 2, 2, 1, 0])),
    "uint3": (np.uint8, DT.UINT3, np.array([7, 0, 5, 2, 6, 1, 3])),
    "uint6": (np.uint8, DT.UINT6, np.array([63, 0, 33, 2, 17, 40, 5])),
}


@pytest.mark.parametrize("kind", sorted(BLOB_CASES))
def test_blob_reader_matches_coremltools(tmp_path, kind):
    np_dtype, mil_dtype, values = BLOB_CASES[kind]
    data = values.astype(np_dtype)
    path = tmp_path / "weight.bin"
    writer = _BlobStorageWriter(str(path))
    stored = data.view(np.uint16) if kind == "fp16" else data
    offset = getattr(writer, f"write_{kind}_data")(stored)
    del writer  # flushes the file
    theirs = getattr(_BlobStorageReader(str(path)), f"read_{kind}_data")(offset)
    ours = BlobFile(path).read(offset, TensorType(mil_dtype, (7,)))
    if kind == "fp16":
        theirs = np.asarray(theirs).view(np.float16)
    np.testing.assert_array_equal(ours, np.asarray(theirs).astype(ours.dtype))
    np.testing.assert_array_equal(ours, data)


def test_package_without_manifest_is_refused_as_core_ml_refuses_it(tmp_path):
    path = _fp16_model(tmp_path)
    (path / "Manifest.json").unlink()
    with pytest.raises(PackageError, match="no Manifest.json"):
        load(path)


def test_registry_gives_the_portable_runtime(tmp_path):
    runtime = get_runtime("portable")
    assert isinstance(runtime, CoreMLRuntime)
    assert runtime.name == "portable" and runtime.claims_neural_engine is False
    assert availability("portable").available
    model = runtime.load(_fp16_model(tmp_path))
    assert isinstance(model, LoadedModel)
    assert model.neural_engine_compiled is False


def test_a_copied_package_loads_independently(tmp_path):
    original = _fp16_model(tmp_path)
    copy = tmp_path / "copy.mlpackage"
    shutil.copytree(original, copy)
    shutil.rmtree(original)
    assert load(copy).description.inputs[0].name == "x"
