"""The portable runtime opens compiled models (.mlmodelc): hand-written programs in the published
grammar run with their weights at their blob offsets, and the description comes from
metadata.json (checked against the program) or from main's signature."""

from __future__ import annotations

import numpy as np
import pytest
from mil_text_helpers import compiled_folder, feature, load, weight_file

from mlx_audio_coreml.errors import MILTextError, ModelLoadFailed, PackageError


@pytest.fixture(autouse=True)
def _private_compiled_cache(tmp_path_factory, monkeypatch):
    """Parsed text programs are kept in the compiled-model cache: this test's, not the user's
    (MLX_AUDIO_COREML_HOME stays, so installed real weights are still found)."""
    from mlx_audio_coreml import config

    cache = tmp_path_factory.mktemp("compiled")
    monkeypatch.setattr(config, "compiled_dir", lambda environ=None: cache)


# the shape of a coremlc 34xx (program 1.0, iOS16) product, with its metadata.json
PRODUCT_IOS16 = """program(1.0)
[buildInfo = dict<tensor<string, []>, tensor<string, []>>({{"coremlc-component-MIL", "3402.3.2"}, {"coremlc-version", "3402.4.1"}})]
{
    func main<ios16>(tensor<fp16, [1, 4]> x, tensor<fp16, [1, 4]> y) {
            tensor<fp16, []> half = const()[name = tensor<string, []>("half"), val = tensor<fp16, []>(0x1p-1)];
            tensor<fp16, [1, 4]> var_3 = mul(x = x, y = y)[name = tensor<string, []>("op_3_cast_fp16")];
            tensor<fp16, [1, 4]> var_5 = mul(x = var_3, y = half)[name = tensor<string, []>("op_5_cast_fp16")];
        } -> (var_5);
}
"""


def test_a_coremlc_style_ios16_program_runs_with_its_metadata(tmp_path):
    metadata = [
        {
            "metadataOutputVersion": "3.0",
            "specificationVersion": 7,
            "inputSchema": [feature("x", "Float16", [1, 4]), feature("y", "Float16", [1, 4])],
            "outputSchema": [feature("var_5", "Float16", [1, 4])],
            "userDefinedMetadata": {"com.github.apple.coremltools.version": "8.1"},
            "shortDescription": "x times y, halved",
        }
    ]
    model = load(compiled_folder(tmp_path, "product", PRODUCT_IOS16, metadata=metadata))
    assert [(t.name, t.dtype, t.shape) for t in model.description.inputs] == [
        ("x", "float16", (1, 4)),
        ("y", "float16", (1, 4)),
    ]
    assert model.description.metadata == {
        "com.github.apple.coremltools.version": "8.1",
        "shortDescription": "x times y, halved",
    }
    x = np.array([[1, 2, 3, 4]], np.float16)
    out = model.predict({"x": x, "y": x}).outputs["var_5"]
    np.testing.assert_array_equal(out, x * x / 2)


def test_without_metadata_the_description_is_main_signature(tmp_path):
    model = load(compiled_folder(tmp_path, "bare", PRODUCT_IOS16))
    assert [t.name for t in model.description.inputs] == ["x", "y"]
    assert [(t.name, t.dtype, t.shape) for t in model.description.outputs] == [("var_5", "float16", (1, 4))]


def test_metadata_naming_other_tensors_than_the_program_is_refused(tmp_path):
    metadata = [{"inputSchema": [feature("mel", "Float16", [1, 4])], "outputSchema": []}]
    with pytest.raises(PackageError, match="lists inputs"):
        load(compiled_folder(tmp_path, "wrong", PRODUCT_IOS16, metadata=metadata))


def test_weights_are_read_at_their_blob_offsets(tmp_path):
    weight = np.arange(12, dtype=np.float32).reshape(3, 4) / 8  # (out, in)
    bias = np.array([-1, 0, 1], np.int8)
    scale = np.array([0.5, 2.0, 4.0], np.float16)
    data, (w_at, b_at, s_at) = weight_file([weight, bias, scale], gap=100)  # records not back to back
    assert (w_at, b_at, s_at) != (64, 192, 320)
    program = f"""program(1.3)
[buildInfo = dict<string, string>({{}})]
{{
    func main<ios17>(tensor<fp32, [2, 4]> x) {{
        tensor<fp32, [3, 4]> w = const()[name = string("w"), val = tensor<fp32, [3, 4]>(BLOBFILE(path = string("@model_path/weights/weight.bin"), offset = uint64({w_at})))];
        tensor<int8, [3]> b8 = const()[name = string("b8"), val = tensor<int8, [3]>(BLOBFILE(path = string("@model_path/weights/weight.bin"), offset = uint64({b_at})))];
        tensor<fp16, [3]> s16 = const()[name = string("s16"), val = tensor<fp16, [3]>(BLOBFILE(path = string("@model_path/weights/weight.bin"), offset = uint64({s_at})))];
        tensor<fp32, [3]> b = cast(dtype = string("fp32"), x = b8)[name = string("b")];
        tensor<fp32, [3]> s = cast(dtype = string("fp32"), x = s16)[name = string("s")];
        tensor<fp32, [2, 3]> xw = matmul(transpose_x = bool(false), transpose_y = bool(true), x = x, y = w)[name = string("xw")];
        tensor<fp32, [2, 3]> shifted = add(x = xw, y = b)[name = string("shifted")];
        tensor<fp32, [2, 3]> y = mul(x = shifted, y = s)[name = string("y")];
    }} -> (y);
}}
"""
    model = load(compiled_folder(tmp_path, "linear", program, weights=data))
    x = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    want = (x @ weight.T + bias) * scale.astype(np.float32)
    np.testing.assert_allclose(model.predict({"x": x}).outputs["y"], want, rtol=1e-6)


def test_a_truncated_weight_file_is_a_package_error(tmp_path):
    data, (offset,) = weight_file([np.ones(64, np.float16)])
    program = f"""program(1.3)
{{
    func main<ios18>(tensor<fp16, [64]> x) {{
        tensor<fp16, [64]> w = const()[name = string("w"), val = tensor<fp16, [64]>(BLOBFILE(path = string("@model_path/weights/weight.bin"), offset = uint64({offset})))];
        tensor<fp16, [64]> y = add(x = x, y = w)[name = string("y")];
    }} -> (y);
}}
"""
    with pytest.raises(PackageError, match="truncated"):
        load(compiled_folder(tmp_path, "short", program, weights=data[:-10]))


def test_split_concat_and_multiple_outputs_run(tmp_path):
    program = """program(1.3)
{
    func main<ios17>(tensor<fp32, [1, 4]> x) {
        int32 axis = const()[name = string("axis"), val = int32(1)];
        tensor<fp32, [1, 2]> a, tensor<fp32, [1, 2]> b = split(axis = axis, num_splits = int32(2), x = x)[name = string("s")];
        tensor<fp32, [1, 4]> swapped = concat(axis = axis, interleave = bool(false), values = (b, a))[name = string("swapped")];
    } -> (swapped, a);
}
"""
    model = load(compiled_folder(tmp_path, "swap", program))
    x = np.array([[1, 2, 3, 4]], np.float32)
    outputs = model.predict({"x": x}).outputs
    np.testing.assert_array_equal(outputs["swapped"], [[3, 4, 1, 2]])
    np.testing.assert_array_equal(outputs["a"], [[1, 2]])


def test_an_ios18_state_is_read_and_written_through_the_text_program(tmp_path):
    program = """program(1.3)
[buildInfo = dict<string, string>({{"coremlc-version", "3505.4.1"}})]
{
    func main<ios18>(state<tensor<fp16, [2, 3]>> acc, tensor<fp16, [2, 3]> x) {
        tensor<fp16, [2, 3]> before = read_state(input = acc)[name = string("before")];
        tensor<fp16, [2, 3]> total = add(x = before, y = x)[name = string("total")];
        write_state(data = total, input = acc)[name = string("store")];
        tensor<fp16, [2, 3]> after = read_state(input = acc)[name = string("after")];
        fp16 two = const()[name = string("two"), val = fp16(0x1p+1)];
        tensor<fp16, [2, 3]> y = mul(x = after, y = two)[name = string("y")];
    } -> (y);
}
"""
    model = load(compiled_folder(tmp_path, "acc", program))
    assert [s.name for s in model.description.states] == ["acc"]
    assert [t.name for t in model.description.inputs] == ["x"]
    state = model.make_state()
    x = np.arange(6, dtype=np.float16).reshape(2, 3)
    model.predict({"x": x}, state=state)
    second = model.predict({"x": x}, state=state).outputs["y"]
    np.testing.assert_array_equal(second, 4 * x)
    np.testing.assert_array_equal(state.read_state("acc"), 2 * x)


@pytest.mark.parametrize("opset", ["ios16", "ios17", "ios18"])
def test_the_same_program_runs_under_each_opset(tmp_path, opset):
    scalar = "tensor<fp32, []>" if opset == "ios16" else "fp32"
    program = f"""program(1.0)
{{
    func main<{opset}>(tensor<fp32, [3]> x) {{
        {scalar} k = const()[name = string("k"), val = {scalar}(-0x1.8p+1)];
        tensor<fp32, [3]> y = mul(x = x, y = k)[name = string("y")];
    }} -> (y);
}}
"""
    model = load(compiled_folder(tmp_path, opset, program))
    assert model.program.opset == {"ios16": "CoreML6", "ios17": "CoreML7", "ios18": "CoreML8"}[opset]
    np.testing.assert_array_equal(model.predict({"x": np.array([1, 2, 3], np.float32)}).outputs["y"], [-3, -6, -9])


def test_a_malformed_program_fails_the_load_with_its_location(tmp_path):
    text = PRODUCT_IOS16.replace("mul(x = x, y = y)", "mul(x = x, y = yy)")
    line = text.splitlines()[5]  # line 6 reads the undefined 'yy'
    with pytest.raises(MILTextError) as caught:
        load(compiled_folder(tmp_path, "bad", text))
    assert (caught.value.line, caught.value.column) == (6, line.index("yy") + 1)
    assert "'yy' is used before it is defined" in caught.value.reason
    assert caught.value.path.endswith("bad.mlmodelc/model.mil")


def test_a_compiled_neural_network_is_refused_with_the_reason(tmp_path):
    folder = tmp_path / "Old.mlmodelc"
    folder.mkdir()
    (folder / "model.espresso.net").write_text("{}")
    with pytest.raises(PackageError, match="neural-network model"):
        load(folder)
    with pytest.raises(PackageError, match="not a compiled model folder"):
        load(tmp_path / "Missing.mlmodelc")


def test_a_text_program_is_parsed_once_per_content(tmp_path, monkeypatch):
    from mlx_audio_coreml.coreml.portable.mil_text import cache

    folder = compiled_folder(tmp_path, "product", PRODUCT_IOS16)
    load(folder)
    assert cache.cache_file(PRODUCT_IOS16).is_file()

    def no_parse(*args, **kwargs):
        raise AssertionError("parsed again")

    monkeypatch.setattr(cache, "parse_program", no_parse)
    x = np.ones((1, 4), np.float16)
    assert load(folder).predict({"x": x, "y": x}).outputs["var_5"].tolist() == [[0.5] * 4]
    (folder / "model.mil").write_text(PRODUCT_IOS16.replace("0x1p-1", "0x1p-2"))  # new content: parsed anew
    with pytest.raises(ModelLoadFailed, match="parsed again"):  # the runtime wraps what it did not expect
        load(folder)
