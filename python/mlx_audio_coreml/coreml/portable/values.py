"""MIL value types and literal values: proto dtypes to numpy, immediate tensors to arrays.

A MIL `Value` is either an immediate literal (inside the spec) or a reference into the weight blob
file; this module decodes the literal kind and describes types. Sub-byte integers (int4, uint1..6)
are packed least-significant bit first, in the spec's `bytes` field as in the blob file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import mlx.core as mx
import numpy as np

from ._proto import MIL_pb2

_DT = MIL_pb2.DataType

# MIL dtype -> numpy dtype of the unpacked values (sub-byte types widen to int8/uint8)
NUMPY_DTYPES: dict[int, np.dtype] = {
    _DT.BOOL: np.dtype(np.bool_),
    _DT.FLOAT16: np.dtype(np.float16),
    _DT.FLOAT32: np.dtype(np.float32),
    _DT.FLOAT64: np.dtype(np.float64),
    _DT.INT8: np.dtype(np.int8),
    _DT.INT16: np.dtype(np.int16),
    _DT.INT32: np.dtype(np.int32),
    _DT.INT64: np.dtype(np.int64),
    _DT.UINT8: np.dtype(np.uint8),
    _DT.UINT16: np.dtype(np.uint16),
    _DT.UINT32: np.dtype(np.uint32),
    _DT.UINT64: np.dtype(np.uint64),
    _DT.INT4: np.dtype(np.int8),
    _DT.UINT1: np.dtype(np.uint8),
    _DT.UINT2: np.dtype(np.uint8),
    _DT.UINT3: np.dtype(np.uint8),
    _DT.UINT4: np.dtype(np.uint8),
    _DT.UINT6: np.dtype(np.uint8),
}

# bit width of the packed sub-byte types, and whether they are signed
SUB_BYTE_BITS: dict[int, tuple[int, bool]] = {
    _DT.INT4: (4, True),
    _DT.UINT1: (1, False),
    _DT.UINT2: (2, False),
    _DT.UINT3: (3, False),
    _DT.UINT4: (4, False),
    _DT.UINT6: (6, False),
}

# the dtype strings `cast` takes (coremltools' builtin names) -> numpy dtype
CAST_DTYPES: dict[str, np.dtype] = {
    "bool": np.dtype(np.bool_),
    "fp16": np.dtype(np.float16),
    "fp32": np.dtype(np.float32),
    "fp64": np.dtype(np.float32),  # Core ML computes fp64 as fp32
    "int8": np.dtype(np.int8),
    "uint8": np.dtype(np.uint8),
    "int16": np.dtype(np.int16),
    "uint16": np.dtype(np.uint16),
    "int32": np.dtype(np.int32),
    "uint32": np.dtype(np.uint32),
    "int64": np.dtype(np.int32),  # Core ML computes int64 as int32
}

_MX_DTYPES: dict[np.dtype, mx.Dtype] = {
    np.dtype(np.bool_): mx.bool_,
    np.dtype(np.float16): mx.float16,
    np.dtype(np.float32): mx.float32,
    np.dtype(np.float64): mx.float32,  # Core ML runs fp64 programs in fp32
    np.dtype(np.int8): mx.int8,
    np.dtype(np.int16): mx.int16,
    np.dtype(np.int32): mx.int32,
    np.dtype(np.int64): mx.int64,
    np.dtype(np.uint8): mx.uint8,
    np.dtype(np.uint16): mx.uint16,
    np.dtype(np.uint32): mx.uint32,
    np.dtype(np.uint64): mx.uint64,
}


def mx_dtype(dtype: np.dtype | str) -> mx.Dtype:
    """The MLX dtype computing values of a numpy dtype (float64 computes as float32)."""
    return _MX_DTYPES[np.dtype(dtype)]


def mx_dtype_or_none(dtype: np.dtype) -> mx.Dtype | None:
    return _MX_DTYPES.get(np.dtype(dtype))


@dataclass(frozen=True)
class TensorType:
    """The declared type of a tensor value: numpy dtype and shape (-1 for an unknown dimension)."""

    mil_dtype: int
    shape: tuple[int, ...] | None  # None: rank unknown

    @property
    def dtype(self) -> np.dtype:
        return NUMPY_DTYPES[self.mil_dtype]

    @property
    def is_string(self) -> bool:
        return self.mil_dtype == _DT.STRING


def dtype_name(mil_dtype: int) -> str:
    return _DT.Name(mil_dtype) if mil_dtype in _DT.values() else f"dtype#{mil_dtype}"


def tensor_type(value_type: MIL_pb2.ValueType) -> TensorType | None:
    """The tensor type of a ValueType, or None for lists, tuples, dictionaries and states."""
    if value_type.WhichOneof("type") != "tensorType":
        return None
    t = value_type.tensorType
    if t.rank < 0:
        return TensorType(t.dataType, None)
    dims = tuple(int(d.constant.size) if d.WhichOneof("dimension") == "constant" else -1 for d in t.dimensions)
    return TensorType(t.dataType, dims)


def state_tensor_type(value_type: MIL_pb2.ValueType) -> TensorType | None:
    """The tensor a state value wraps (iOS18 `state<tensor>`), or None for anything else."""
    if value_type.WhichOneof("type") != "stateType":
        return None
    return tensor_type(value_type.stateType.wrappedType)


def unpack_sub_byte(packed: np.ndarray, nbits: int, signed: bool, count: int) -> np.ndarray:
    """Unpack `count` values of `nbits` each, least significant bit first, from a uint8 buffer."""
    bits = np.unpackbits(packed.view(np.uint8), bitorder="little")
    needed = count * nbits
    if bits.size < needed:
        raise ValueError(f"{count} values of {nbits} bits need {needed} bits, found {bits.size}")
    bits = bits[:needed].reshape(count, nbits)  # (count, nbits), LSB first
    weights = (1 << np.arange(nbits, dtype=np.int32)).astype(np.int32)
    values = bits.astype(np.int32) @ weights
    if signed:
        values = np.where(values >= 1 << (nbits - 1), values - (1 << nbits), values)
        return values.astype(np.int8)
    return values.astype(np.uint8)


def decode_immediate_tensor(value: MIL_pb2.TensorValue, ttype: TensorType) -> Any:
    """An immediate tensor literal as a numpy array (or a str for a string scalar)."""
    kind = value.WhichOneof("value")
    shape = ttype.shape or ()
    if ttype.is_string:
        strings = [s.decode("utf-8") if isinstance(s, bytes) else s for s in value.strings.values]
        return strings[0] if shape == () and len(strings) == 1 else np.array(strings).reshape(shape)
    count = int(np.prod(shape, dtype=np.int64))
    if kind == "bytes":
        raw = np.frombuffer(value.bytes.values, dtype=np.uint8)
        if ttype.mil_dtype in SUB_BYTE_BITS:
            nbits, signed = SUB_BYTE_BITS[ttype.mil_dtype]
            return unpack_sub_byte(raw, nbits, signed, count).reshape(shape)
        return raw.view(ttype.dtype)[:count].reshape(shape).copy()
    field = {
        "floats": value.floats.values,
        "ints": value.ints.values,
        "bools": value.bools.values,
        "longInts": value.longInts.values,
        "doubles": value.doubles.values,
    }.get(kind)
    if field is None:
        return np.zeros(shape, dtype=ttype.dtype)  # an empty tensor has no field set
    return np.array(list(field)).astype(ttype.dtype).reshape(shape)
