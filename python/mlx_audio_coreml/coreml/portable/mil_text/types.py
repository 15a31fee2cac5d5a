"""Parse text MIL types into MIL proto ValueTypes.

Spellings: a bare dtype is a scalar (`fp16`, `string`); `tensor<fp16, [1, 80, 3000]>`, with `[]`
for a scalar, `?` (or a symbol such as `is0`) for an unknown dimension, and `*` for an unknown
rank; `state<tensor<...>>`; `list<T, N>` (`?` for an unknown length); `tuple<T, ...>`;
`dict<K, V>`.
"""

from __future__ import annotations

from .._proto import MIL_pb2
from .cursor import Cursor, describe
from .grammar import COMPOSITE_TYPES, DTYPES
from .lexer import Token


def starts_type(cursor: Cursor, ahead: int = 0) -> bool:
    """Whether a type starts `ahead` tokens on: a composite word before '<', or a dtype word."""
    token = cursor.peek(ahead)
    if token.kind != "name":
        return False
    if token.text in COMPOSITE_TYPES:
        return cursor.at("<", ahead + 1)
    return token.text in DTYPES


def parse_type(cursor: Cursor) -> MIL_pb2.ValueType:
    """The type at the cursor. A tensor type seen before in this program is reused (callers copy
    it, never change it): types repeat on almost every line and building them is a fifth of a parse."""
    token = cursor.peek()
    if token.kind != "name" or not starts_type(cursor):
        raise cursor.error(f"expected a type, found {describe(token)}")
    key = _tensor_key(cursor) if token.text == "tensor" else None
    if key is not None and key in cursor.types:
        cursor.index += len(key)
        return cursor.types[key]
    value_type = _parse_type(cursor, token)
    if key is not None:
        cursor.types[key] = value_type
    return value_type


def _tensor_key(cursor: Cursor) -> tuple[str, ...] | None:
    """The token texts of `tensor<...>` up to its '>' (a tensor type nests no other type). The scan
    stops at the end token, before the cursor's padding runs out."""
    texts = []
    ahead = 1
    while True:
        token = cursor.peek(ahead)
        if token.kind in ("end", "string") or ahead > 64:
            return None
        texts.append(token.text)
        if token.text == ">":
            return ("tensor", *texts)
        ahead += 1


def _parse_type(cursor: Cursor, token: Token) -> MIL_pb2.ValueType:
    cursor.next()
    if token.text in DTYPES:
        return scalar_type(DTYPES[token.text])
    cursor.expect("<", f"after '{token.text}'")
    value_type = {
        "tensor": _tensor_rest,
        "state": _state_rest,
        "list": _list_rest,
        "tuple": _tuple_rest,
        "dict": _dict_rest,
    }[token.text](cursor)
    cursor.expect(">", f"to close '{token.text}<'")
    return value_type


def scalar_type(dtype: int) -> MIL_pb2.ValueType:
    value_type = MIL_pb2.ValueType()
    value_type.tensorType.dataType = dtype
    value_type.tensorType.rank = 0
    return value_type


def _dtype(cursor: Cursor) -> int:
    token = cursor.expect_kind("name", "a data type")
    if token.text not in DTYPES:
        raise cursor.error(f"unknown data type '{token.text}'", token)
    return DTYPES[token.text]


def _tensor_rest(cursor: Cursor) -> MIL_pb2.ValueType:
    value_type = scalar_type(_dtype(cursor))
    cursor.expect(",", "between a tensor's data type and its shape")
    tensor = value_type.tensorType
    if cursor.accept("*"):
        tensor.rank = -1
        return value_type
    cursor.expect("[", "to open a tensor's shape")
    while not cursor.at("]"):
        dim = tensor.dimensions.add()
        token = cursor.next()
        if token.kind == "number" and token.text.isdigit():
            dim.constant.size = int(token.text)
        elif token.text == "?" or token.kind == "name":
            dim.unknown.SetInParent()
        else:
            raise cursor.error(f"expected a dimension (a size, '?' or a symbol), found {describe(token)}", token)
        if not cursor.at("]"):
            cursor.expect(",", "between dimensions")
    cursor.next()
    tensor.rank = len(tensor.dimensions)
    return value_type


def _state_rest(cursor: Cursor) -> MIL_pb2.ValueType:
    value_type = MIL_pb2.ValueType()
    value_type.stateType.wrappedType.CopyFrom(parse_type(cursor))
    return value_type


def _list_rest(cursor: Cursor) -> MIL_pb2.ValueType:
    value_type = MIL_pb2.ValueType()
    value_type.listType.type.CopyFrom(parse_type(cursor))
    cursor.expect(",", "between a list's element type and its length")
    token = cursor.next()
    if token.kind == "number" and token.text.isdigit():
        value_type.listType.length.constant.size = int(token.text)
    elif token.text == "?" or token.kind == "name":
        value_type.listType.length.unknown.SetInParent()
    else:
        raise cursor.error(f"expected a list length, found {describe(token)}", token)
    return value_type


def _tuple_rest(cursor: Cursor) -> MIL_pb2.ValueType:
    value_type = MIL_pb2.ValueType()
    value_type.tupleType.SetInParent()
    while not cursor.at(">"):
        value_type.tupleType.types.add().CopyFrom(parse_type(cursor))
        if not cursor.at(">"):
            cursor.expect(",", "between tuple element types")
    return value_type


def _dict_rest(cursor: Cursor) -> MIL_pb2.ValueType:
    value_type = MIL_pb2.ValueType()
    value_type.dictionaryType.keyType.CopyFrom(parse_type(cursor))
    cursor.expect(",", "between a dictionary's key and value types")
    value_type.dictionaryType.valueType.CopyFrom(parse_type(cursor))
    return value_type
