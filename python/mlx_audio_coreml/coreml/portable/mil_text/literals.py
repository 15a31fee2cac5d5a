"""Parse text MIL literal values into MIL proto Values (the same encoding coremltools writes).

A literal is its type and then its content in parentheses: `int32(1)`, `string("valid")`,
`tensor<int32, [2]>([1, 1])`, `tensor<fp16, []>(-0x1.388p+13)`, a weight in the blob file
`tensor<fp16, [64, 80, 3]>(BLOBFILE(path = string("@model_path/weights/weight.bin"),
offset = uint64(64)))`, or a dictionary `dict<string, string>({{"k", "v"}})`. Tensor contents
nest in brackets by dimension; numbers are decimal, exponent or hexadecimal floats, `inf`, `nan`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._proto import MIL_pb2
from ..values import NUMPY_DTYPES, SUB_BYTE_BITS
from .cursor import Cursor, describe
from .grammar import DTYPE_NAMES, FLOAT_DTYPES
from .lexer import Token
from .types import parse_type, starts_type

_DT = MIL_pb2.DataType
# the TensorValue field per dtype; every other numeric dtype goes in `bytes` (sub-byte ones packed)
_LIST_FIELDS = {_DT.FLOAT32: "floats", _DT.FLOAT64: "doubles", _DT.INT32: "ints", _DT.INT64: "longInts"}


def starts_literal(cursor: Cursor) -> bool:
    """Whether a typed literal starts here: a type word followed by '(' or '<'."""
    return starts_type(cursor) and (cursor.at("(", 1) or cursor.at("<", 1))


def parse_value(cursor: Cursor) -> MIL_pb2.Value:
    """One typed literal, `<type>(<content>)`, as a MIL Value."""
    value = MIL_pb2.Value()
    value.type.CopyFrom(parse_type(cursor))
    cursor.expect("(", "to open a literal's value")
    kind = value.type.WhichOneof("type")
    if kind == "tensorType":
        if cursor.at("BLOBFILE"):
            _blob(cursor, value)
        else:
            _tensor(cursor, value)
    elif kind == "dictionaryType":
        _dictionary(cursor, value)
    elif kind == "tupleType":
        _tuple(cursor, value)
    elif not cursor.at(")"):
        raise cursor.error(f"literals of {kind} are not supported")
    cursor.expect(")", "to close a literal's value")
    return value


def _tensor(cursor: Cursor, value: MIL_pb2.Value) -> None:
    tensor = value.type.tensorType
    start = cursor.peek()
    items: list[Token] = []
    if not cursor.at(")"):
        _items(cursor, items)
    if tensor.rank < 0 or any(d.WhichOneof("dimension") != "constant" for d in tensor.dimensions):
        raise cursor.error("a literal tensor needs a fully known shape", start)
    shape = [int(d.constant.size) for d in tensor.dimensions]
    count = math.prod(shape)
    if len(items) != count:
        raise cursor.error(f"{len(items)} values given for shape {shape} ({count} values)", start)
    encode_tensor(cursor, value.immediateValue.tensor, tensor.dataType, items)


def _items(cursor: Cursor, out: list[Token]) -> None:
    """The scalar tokens of a content, flattened in row-major order (nesting is by dimension)."""
    if not cursor.accept("["):
        out.append(_scalar_token(cursor))
        return
    while not cursor.at("]"):
        _items(cursor, out)
        if not cursor.at("]"):
            cursor.expect(",", "between values")
    cursor.next()


def _scalar_token(cursor: Cursor) -> Token:
    """A number (a sign joined on), a word (`true`, `inf`), or a string, as one token."""
    token = cursor.next()
    if token.text in ("-", "+") and token.kind == "punct":
        number = cursor.next()
        if number.kind not in ("number", "name"):
            raise cursor.error(f"expected a number after '{token.text}', found {describe(number)}", number)
        return Token("number", token.text + number.text, token.offset)
    if token.kind in ("number", "name", "string"):
        return token
    raise cursor.error(f"expected a value, found {describe(token)}", token)


def encode_tensor(cursor: Cursor, out: MIL_pb2.TensorValue, dtype: int, items: list[Token]) -> None:
    """Write `items`, read as `dtype`, into the TensorValue field coremltools uses for that dtype."""
    if dtype == _DT.STRING:
        for token in items:
            if token.kind != "string":
                raise cursor.error(f"expected a string, found {describe(token)}", token)
        out.strings.SetInParent()
        out.strings.values.extend(t.text for t in items)
        return
    if dtype == _DT.BOOL:
        out.bools.SetInParent()
        out.bools.values.extend(_bool(cursor, t) for t in items)
        return
    if dtype not in NUMPY_DTYPES:
        raise cursor.error(
            f"literal values of type {DTYPE_NAMES.get(dtype, dtype)} are not supported", items[0] if items else None
        )
    array = _numbers(cursor, dtype, items)
    field = _LIST_FIELDS.get(dtype, "bytes")
    getattr(out, field).SetInParent()  # an empty tensor still says which field it would use
    if field != "bytes":
        getattr(out, field).values.extend(array.tolist())
    elif dtype in SUB_BYTE_BITS:
        out.bytes.values = pack_sub_byte(array, SUB_BYTE_BITS[dtype][0])
    else:
        out.bytes.values = array.tobytes()


def _bool(cursor: Cursor, token: Token) -> bool:
    if token.text not in ("true", "false") or token.kind != "name":
        raise cursor.error(f"expected true or false, found {describe(token)}", token)
    return token.text == "true"


def _numbers(cursor: Cursor, dtype: int, items: list[Token]) -> np.ndarray:
    numpy_dtype = NUMPY_DTYPES[dtype]
    if dtype in FLOAT_DTYPES:
        return np.array([_float(cursor, t) for t in items], dtype=np.float64).astype(numpy_dtype)
    values = [_int(cursor, t) for t in items]
    low, high = _int_range(dtype, numpy_dtype)
    for token, number in zip(items, values):
        if not low <= number <= high:
            raise cursor.error(f"{token.text} does not fit in {DTYPE_NAMES[dtype]}", token)
    return np.array(values, dtype=numpy_dtype)


def _int_range(dtype: int, numpy_dtype: np.dtype) -> tuple[int, int]:
    if dtype in SUB_BYTE_BITS:
        bits, signed = SUB_BYTE_BITS[dtype]
        return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    info = np.iinfo(numpy_dtype)
    return int(info.min), int(info.max)


def _float(cursor: Cursor, token: Token) -> float:
    text = token.text
    try:
        return float.fromhex(text) if "x" in text.lower() else float(text)
    except ValueError:
        raise cursor.error(f"expected a number, found {describe(token)}", token) from None


def _int(cursor: Cursor, token: Token) -> int:
    text = token.text
    try:
        if "x" in text.lower():
            return int(text, 16)
        return int(text)
    except ValueError:
        raise cursor.error(f"expected an integer, found {describe(token)}", token) from None


def pack_sub_byte(values: np.ndarray, nbits: int) -> bytes:
    """Pack integers of `nbits` each, least significant bit first (as the blob file and proto do)."""
    unsigned = values.astype(np.int64) & ((1 << nbits) - 1)
    bits = ((unsigned[:, None] >> np.arange(nbits)) & 1).astype(np.uint8).reshape(-1)
    return np.packbits(bits, bitorder="little").tobytes()


def _blob(cursor: Cursor, value: MIL_pb2.Value) -> None:
    """`BLOBFILE(path = string("..."), offset = uint64(N))`, the two entries in either order."""
    start = cursor.next()
    cursor.expect("(", "after BLOBFILE")
    entries: dict[str, Any] = {}
    while not cursor.at(")"):
        key = cursor.expect_kind("name", "'path' or 'offset'")
        cursor.expect("=", f"after '{key.text}'")
        entries[key.text] = scalar_of(cursor, parse_value(cursor), key)
        if not cursor.at(")"):
            cursor.expect(",", "between BLOBFILE entries")
    cursor.next()
    path, offset = entries.get("path"), entries.get("offset")
    if not isinstance(path, str) or not isinstance(offset, int) or isinstance(offset, bool):
        raise cursor.error("BLOBFILE needs a string path and an integer offset", start)
    value.blobFileValue.fileName = path
    value.blobFileValue.offset = offset


def scalar_of(cursor: Cursor, value: MIL_pb2.Value, token: Token) -> Any:
    """The Python value of a scalar literal (str, bool, int or float)."""
    tensor = value.immediateValue.tensor
    kind = tensor.WhichOneof("value")
    if value.type.tensorType.rank != 0 or kind is None:
        raise cursor.error(f"'{token.text}' needs a scalar value", token)
    if kind == "bytes":
        return np.frombuffer(tensor.bytes.values, dtype=NUMPY_DTYPES[value.type.tensorType.dataType])[0].item()
    return list(getattr(tensor, kind).values)[0]


def _dictionary(cursor: Cursor, value: MIL_pb2.Value) -> None:
    """`{{key, value}, ...}` with bare contents of the key and value types (`({})` when empty)."""
    dict_type = value.type.dictionaryType
    value.immediateValue.dictionary.SetInParent()
    cursor.expect("{", "to open a dictionary")
    while not cursor.at("}"):
        cursor.expect("{", "to open a dictionary entry")
        pair = value.immediateValue.dictionary.values.add()
        _bare(cursor, dict_type.keyType, pair.key)
        cursor.expect(",", "between a key and its value")
        _bare(cursor, dict_type.valueType, pair.value)
        cursor.expect("}", "to close a dictionary entry")
        if not cursor.at("}"):
            cursor.expect(",", "between dictionary entries")
    cursor.next()


def _tuple(cursor: Cursor, value: MIL_pb2.Value) -> None:
    """Element contents separated by commas (`()` is an empty tuple)."""
    value.immediateValue.tuple.SetInParent()
    for element_type in value.type.tupleType.types:
        if cursor.at(")"):
            break
        _bare(cursor, element_type, value.immediateValue.tuple.values.add())
        if not cursor.at(")"):
            cursor.expect(",", "between tuple elements")


def _bare(cursor: Cursor, value_type: MIL_pb2.ValueType, out: MIL_pb2.Value) -> None:
    """A content without its type (the type is known from the container)."""
    out.type.CopyFrom(value_type)
    if value_type.WhichOneof("type") != "tensorType" or value_type.tensorType.rank != 0:
        raise cursor.error("only scalar dictionary keys, values and tuple elements are supported")
    encode_tensor(cursor, out.immediateValue.tensor, value_type.tensorType.dataType, [_scalar_token(cursor)])
