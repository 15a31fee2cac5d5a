"""Text MIL parsing: every spelling of types and literals decodes to the values written, and a
malformed program fails with MILTextError at the right line and column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import mlx_audio_coreml  # noqa: F401  (fast BLAS before MLX)
from mlx_audio_coreml.coreml.portable._proto import MIL_pb2
from mlx_audio_coreml.coreml.portable.graph import GraphReader
from mlx_audio_coreml.coreml.portable.mil_text import parse_program
from mlx_audio_coreml.errors import MILTextError, PackageError

LITERALS = """program(1.3)
[buildInfo = dict<string, string>({{"coremlc-version", "3505.4.1"}, {"note", "a \\"quoted\\" value"}})]
{
    func main<ios18>(tensor<fp32, [2, 2]> x) {
        fp16 a = const()[name = string("a"), val = fp16(-0x1.388p+13)];
        tensor<fp16, []> b = const()[name = tensor<string, []>("b"), val = tensor<fp16, []>(0x1p-2)];
        tensor<fp32, [2, 2]> c = const()[name = string("c"), val = tensor<fp32, [2, 2]>([[1.5, -2e-3], [inf, -0x1.8p+1]])];
        tensor<int32, [3]> d = const()[name = string("d"), val = tensor<int32, [3]>([-2147483648, 0, 2147483647])];
        tensor<bool, [2]> e = const()[name = string("e"), val = tensor<bool, [2]>([true, false])];
        tensor<int8, [3]> f = const()[name = string("f"), val = tensor<int8, [3]>([-128, 0, 127])];
        tensor<uint8, [2]> g = const()[name = string("g"), val = tensor<uint8, [2]>([0, 255])];
        tensor<int16, [2]> h = const()[name = string("h"), val = tensor<int16, [2]>([-300, 300])];
        tensor<uint16, [2]> i = const()[name = string("i"), val = tensor<uint16, [2]>([0, 65535])];
        tensor<int64, [2]> j = const()[name = string("j"), val = tensor<int64, [2]>([-5000000000, 1])];
        tensor<fp64, [1]> k = const()[name = string("k"), val = tensor<fp64, [1]>([0.1])];
        tensor<string, [2]> l = const()[name = string("l"), val = tensor<string, [2]>(["same", "valid"])];
        tensor<int4, [4]> m = const()[name = string("m"), val = tensor<int4, [4]>([-8, -1, 0, 7])];
        tensor<uint1, [3]> n = const()[name = string("n"), val = tensor<uint1, [3]>([1, 0, 1])];
        int32 o = const()[name = string("o"), val = int32(7)];
        tensor<int32, []> p = const()[name = tensor<string, []>("p"), val = tensor<int32, []>(-7)];
        bool q = const()[name = string("q"), val = bool(true)];
        string r = const()[name = string("r"), val = string("valid")];
        tensor<fp32, [0]> s = const()[name = string("s"), val = tensor<fp32, [0]>([])];
        fp32 t = const()[name = string("t"), val = fp32(nan)];
        tensor<fp32, [2, 2]> y = add(x = x, y = c)[name = string("y")];
    } -> (y);
}
"""

EXPECTED = {
    "a": np.float16(-10000.0),
    "b": np.float16(0.25),
    "c": np.array([[1.5, -2e-3], [np.inf, -3.0]], np.float32),
    "d": np.array([-(2**31), 0, 2**31 - 1], np.int32),
    "e": np.array([True, False]),
    "f": np.array([-128, 0, 127], np.int8),
    "g": np.array([0, 255], np.uint8),
    "h": np.array([-300, 300], np.int16),
    "i": np.array([0, 65535], np.uint16),
    "j": np.array([-5_000_000_000, 1], np.int64),
    "k": np.array([0.1], np.float64),
    "l": np.array(["same", "valid"]),
    "m": np.array([-8, -1, 0, 7], np.int8),
    "n": np.array([1, 0, 1], np.uint8),
    "o": np.int32(7),
    "p": np.int32(-7),
    "q": np.bool_(True),
    "r": "valid",
    "s": np.zeros((0,), np.float32),
}


def _consts(program: MIL_pb2.Program) -> dict[str, object]:
    main = program.functions["main"]
    reader = GraphReader(Path("literals.mlmodelc"), program, Path("literals.mlmodelc/weights"))
    block = main.block_specializations[main.opset]
    return {op.outputs[0].name: reader.value(op.attributes["val"]) for op in block.operations if op.type == "const"}


def test_every_dtype_and_scalar_spelling_decodes_to_the_values_written():
    values = _consts(parse_program(LITERALS))
    for name, want in EXPECTED.items():
        got = values[name]
        if isinstance(want, str):
            assert got == want
            continue
        assert np.asarray(got).dtype == np.asarray(want).dtype, name
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want), err_msg=name)
    assert np.isnan(values["t"])


def test_scalars_have_rank_zero_in_both_spellings():
    main = parse_program(LITERALS).functions["main"]
    ops = {op.outputs[0].name: op for op in main.block_specializations["CoreML8"].operations}
    for name in ("a", "b", "o", "p", "q", "r"):
        assert ops[name].outputs[0].type.tensorType.rank == 0, name
    assert [d.constant.size for d in ops["c"].outputs[0].type.tensorType.dimensions] == [2, 2]


def test_build_info_dictionary_keeps_its_pairs_and_escapes():
    info = parse_program(LITERALS).attributes["buildInfo"]
    pairs = {
        p.key.immediateValue.tensor.strings.values[0]: p.value.immediateValue.tensor.strings.values[0]
        for p in info.immediateValue.dictionary.values
    }
    assert pairs == {"coremlc-version": "3505.4.1", "note": 'a "quoted" value'}


def test_legacy_dictionary_spelling_and_empty_dictionary():
    program = parse_program(
        """program(1.0)
[buildInfo = dict<tensor<string, []>, tensor<string, []>>({{"coremltools-version", "8.1"}}), other = dict<string, string>({})]
{
    func main<ios16>(tensor<fp16, [1, 10]> x) {
    } -> (x);
}
"""
    )
    assert len(program.attributes["buildInfo"].immediateValue.dictionary.values) == 1
    assert len(program.attributes["other"].immediateValue.dictionary.values) == 0
    assert program.attributes["buildInfo"].type.dictionaryType.keyType.tensorType.dataType == MIL_pb2.DataType.STRING


@pytest.mark.parametrize(
    "opset, proto",
    [("ios15", "CoreML5"), ("ios16", "CoreML6"), ("ios17", "CoreML7"), ("ios18", "CoreML8"), ("CoreML8", "CoreML8")],
)
def test_function_opsets_map_to_the_proto_opsets(opset, proto):
    program = parse_program(f"program(1.0) {{ func main<{opset}>(tensor<fp32, [1]> x) {{ }} -> (x); }}")
    assert program.functions["main"].opset == proto
    assert list(program.functions["main"].block_specializations) == [proto]


def test_a_function_written_per_opset_becomes_its_specializations():
    text = """program(1.3)
{
    func main<ios17>(tensor<fp32, [2]> x) {
        tensor<fp32, [2]> y = relu(x = x)[name = string("y")];
    } -> (y);
    func main<ios18>(tensor<fp32, [2]> x) {
        tensor<fp32, [2]> y = sigmoid(x = x)[name = string("y")];
    } -> (y);
}
"""
    main = parse_program(text).functions["main"]
    assert main.opset == "CoreML7"
    assert main.block_specializations["CoreML7"].operations[0].type == "relu"
    assert main.block_specializations["CoreML8"].operations[0].type == "sigmoid"


def test_types_with_unknown_dimensions_states_lists_and_tuples():
    text = """program(1.0)
{
    func main<ios18>(tensor<int32, [1, ?]> ids, state<tensor<fp16, [1, 2]>> cache, tensor<fp32, *> any,
                     list<tensor<fp32, [2]>, ?> items, list<int32, 3> fixed)
        [FlexibleShapeInformation = tuple<tuple<tensor<string, []>>>()] {
    } -> (ids);
}
"""
    main = parse_program(text).functions["main"]
    ids, cache, anything, items, fixed = main.inputs
    assert items.type.listType.length.WhichOneof("dimension") == "unknown"
    assert items.type.listType.type.tensorType.dimensions[0].constant.size == 2
    assert fixed.type.listType.length.constant.size == 3
    assert ids.type.tensorType.dimensions[1].WhichOneof("dimension") == "unknown"
    assert cache.type.stateType.wrappedType.tensorType.dataType == MIL_pb2.DataType.FLOAT16
    assert anything.type.tensorType.rank == -1
    assert main.attributes["FlexibleShapeInformation"].type.WhichOneof("type") == "tupleType"


def test_blob_file_values_take_either_scalar_spelling():
    text = """program(1.0)
{
    func main<ios16>(tensor<fp16, [2]> x) {
        tensor<fp16, [2]> w = const()[name = tensor<string, []>("w"), val = tensor<fp16, [2]>(BLOBFILE(path = tensor<string, []>("@model_path/weights/weight.bin"), offset = tensor<uint64, []>(128)))];
        tensor<fp16, [2]> v = const()[name = string("v"), val = tensor<fp16, [2]>(BLOBFILE(offset = uint64(4160), path = string("@model_path/weights/weight.bin")))];
        tensor<fp16, [2]> y = add(x = w, y = v)[name = string("y")];
    } -> (y);
}
"""
    ops = parse_program(text).functions["main"].block_specializations["CoreML6"].operations
    blobs = [op.attributes["val"].blobFileValue for op in ops[:2]]
    assert [(b.fileName, b.offset) for b in blobs] == [
        ("@model_path/weights/weight.bin", 128),
        ("@model_path/weights/weight.bin", 4160),
    ]


def test_multiple_outputs_in_both_spellings_and_tuple_arguments():
    text = """program(1.3)
{
    func main<ios17>(tensor<fp32, [1, 4]> x) {
        int32 axis = const()[name = string("axis"), val = int32(1)];
        tensor<fp32, [1, 2]> a, tensor<fp32, [1, 2]> b = split(axis = axis, num_splits = int32(2), x = x)[name = string("s1")];
        (tensor<fp32, [1, 2]> c, tensor<fp32, [1, 2]> d) = split(axis = axis, num_splits = int32(2), x = x)[name = string("s2")];
        tensor<fp32, [1, 4]> y = concat(axis = axis, interleave = bool(false), values = (d, c))[name = string("y")];
    } -> (y, a, b);
}
"""
    ops = parse_program(text).functions["main"].block_specializations["CoreML7"].operations
    assert [o.name for o in ops[1].outputs] == ["a", "b"]
    assert [o.name for o in ops[2].outputs] == ["c", "d"]
    assert [b.name for b in ops[3].inputs["values"].arguments] == ["d", "c"]
    assert ops[1].inputs["num_splits"].arguments[0].value.immediateValue.tensor.ints.values == [2]


def _error(text: str) -> MILTextError:
    with pytest.raises(MILTextError) as caught:
        parse_program(text, "model.mil")
    assert isinstance(caught.value, PackageError)
    return caught.value


GOOD_HEAD = "program(1.3)\n{\n    func main<ios18>(tensor<fp32, [2]> x) {\n"


def _position(text: str, marker: str) -> tuple[int, int]:
    """Line and column (1-based) of the first `marker` in `text`."""
    index = text.index(marker)
    return text.count("\n", 0, index) + 1, index - (text.rfind("\n", 0, index) + 1) + 1


# (body after the function header, where the error must point (first occurrence), what it says)
MALFORMED = [
    ('        tensor<fp32, [2]> y = relu(x = x)[name = string("y")]\n    } -> (y);\n}\n', "}", "expected ';'"),
    ("        tensor<fp33, [2]> y = relu(x = x);\n    } -> (y);\n}\n", "fp33", "unknown data type 'fp33'"),
    ("        tensor<fp32, [2]> y = relu(x = z);\n    } -> (y);\n}\n", "z)", "'z' is used before it is defined"),
    (
        "        tensor<int32, [2]> y = const()[val = tensor<int32, [2]>([1, 2, 3])];\n    } -> (y);\n}\n",
        "[1, 2, 3]",
        "3 values given for shape [2]",
    ),
    (
        "        tensor<int8, [1]> y = const()[val = tensor<int8, [1]>([200])];\n    } -> (y);\n}\n",
        "200",
        "200 does not fit in int8",
    ),
    ('        string y = const()[val = string("open)];\n    } -> (y);\n}\n', '"open', "unterminated string"),
    (
        "        tensor<fp32, [2]> y = relu(x = x);\n        tensor<fp16, [2]> y = relu(x = x);\n    } -> (y);\n}\n",
        "tensor<fp16",
        "'y' is defined twice",
    ),
    ("        tensor<fp32, [2]> y = relu(x = x);\n    } -> (y)\n}\n", "}\n", "expected ';'"),
    ("        bool y = const()[val = bool(maybe)];\n    } -> (y);\n}\n", "maybe", "expected true or false"),
    ("        tensor<fp32, [2]> y = relu(x = x) extra;\n    } -> (y);\n}\n", "extra", "expected ';'"),
]


@pytest.mark.parametrize("body, marker, words", MALFORMED)
def test_malformed_programs_fail_at_their_line_and_column(body, marker, words):
    text = GOOD_HEAD + body
    line, column = _position(text, marker) if marker != "}\n" else _position(text, "\n}\n")
    if marker == "}\n":
        line, column = line + 1, 1  # the program's closing brace, where ';' was due
    error = _error(text)
    assert (error.line, error.column) == (line, column), str(error)
    assert words in error.reason
    assert f"line {line}, column {column}" in str(error)


def test_unknown_opset_and_missing_program_header_are_located():
    error = _error("program(1.3) {\n  func main<ios99>(tensor<fp32, [1]> x) { } -> (x);\n}\n")
    assert (error.line, error.column, "unknown opset 'ios99'" in error.reason) == (2, 13, True)
    error = _error("\n\n  func main<ios18>() {} -> ();")
    assert (error.line, error.column) == (3, 3)
    assert "expected 'program'" in error.reason


def test_function_attributes_this_reader_cannot_hold_are_skipped():
    text = """program(1.0)
{
    func main<ios17>(tensor<int32, [1, ?]> input_ids)[FlexibleShapeInformation = tuple<tuple<tensor<string, []>, dict<tensor<string, []>, tensor<int32, [?]>>>, tuple<tensor<string, []>, dict<tensor<string, []>, list<tensor<int32, [2]>, ?>>>>((("DefaultShapes", {{"input_ids", [1, 1]}}), ("RangeDims", {{"input_ids", [[1, 1], [1, 448]]}}))), note = string("kept")] {
        tensor<int32, [1, ?]> y = identity(x = input_ids)[name = string("y")];
    } -> (y);
}
"""
    main = parse_program(text).functions["main"]
    assert list(main.attributes) == ["note"]
    assert main.block_specializations["CoreML7"].operations[0].type == "identity"
