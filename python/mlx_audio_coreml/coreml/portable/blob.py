"""The MIL weight blob file (weights/weight.bin): a memory-mapped reader with bounds checks.

Layout (MIL storage format version 2, little-endian), as written by coremltools'
`_BlobStorageWriter` and checked against its reader in tests/coreml/portable:
- file header, 64 bytes: u32 blob count, u32 version (2), padding;
- per blob, a 64-byte metadata record at the offset the spec names: u32 sentinel 0xDEADBEEF,
  u32 storage dtype, u64 size in bytes, u64 data offset, u32 padding bits in the last byte
  (sub-byte types), reserved; the data itself starts at the data offset (64-byte aligned).
"""

from __future__ import annotations

import mmap
import struct
from pathlib import Path
from typing import NoReturn

import numpy as np

from ...errors import PackageError
from .values import NUMPY_DTYPES, SUB_BYTE_BITS, TensorType, dtype_name, unpack_sub_byte

_SENTINEL = 0xDEADBEEF
_HEADER_SIZE = 64
_METADATA = struct.Struct("<IIQQI")  # sentinel, dtype, size, offset, padding bits

# storage dtype codes in the metadata record -> the MIL proto dtype they hold
_STORAGE_TO_MIL: dict[int, int] = {
    1: 10,  # fp16 -> FLOAT16
    2: 11,  # fp32 -> FLOAT32
    3: 31,  # uint8
    4: 21,  # int8
    5: 13,  # bf16
    6: 22,  # int16
    7: 32,  # uint16
    8: 25,  # int4
    9: 37,  # uint1
    10: 36,  # uint2
    11: 35,  # uint4
    12: 39,  # uint3
    13: 38,  # uint6
    14: 23,  # int32
    15: 33,  # uint32
}


class BlobFile:
    """Reads tensors out of one weight file without copying whole-byte types (a memory map)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            with open(self.path, "rb") as handle:
                size = self.path.stat().st_size
                if size < _HEADER_SIZE:
                    raise PackageError(str(self.path), f"weight file is {size} bytes, shorter than its header")
                self._map = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except OSError as exc:
            raise PackageError(str(self.path), f"cannot read weight file: {exc}") from exc
        self._buffer = np.frombuffer(self._map, dtype=np.uint8)
        count, version = struct.unpack_from("<II", self._map, 0)
        if version != 2:
            raise PackageError(str(self.path), f"weight file version {version}, expected 2")
        self.count = count

    def read(self, offset: int, ttype: TensorType) -> np.ndarray:
        """The tensor whose metadata record starts at `offset`, shaped and typed as `ttype`."""
        sentinel, storage, size, data_offset, _ = self._metadata(offset)
        if sentinel != _SENTINEL:
            self._fail(offset, f"no blob metadata here (sentinel {sentinel:#x})")
        stored = _STORAGE_TO_MIL.get(storage)
        if stored != ttype.mil_dtype:
            self._fail(offset, f"blob holds storage type {storage}, the spec declares {dtype_name(ttype.mil_dtype)}")
        if data_offset + size > self._buffer.size:
            self._fail(
                offset,
                f"blob data [{data_offset}, {data_offset + size}) runs past the end of the file "
                f"({self._buffer.size} bytes): the file is truncated",
            )
        raw = self._buffer[data_offset : data_offset + size]
        shape = ttype.shape or ()
        count = int(np.prod(shape, dtype=np.int64))
        if ttype.mil_dtype in SUB_BYTE_BITS:
            nbits, signed = SUB_BYTE_BITS[ttype.mil_dtype]
            if count * nbits > size * 8:
                self._fail(offset, f"{count} values of {nbits} bits do not fit in {size} bytes")
            return unpack_sub_byte(raw, nbits, signed, count).reshape(shape)
        dtype = NUMPY_DTYPES.get(ttype.mil_dtype)
        if dtype is None:
            self._fail(offset, f"weights of type {dtype_name(ttype.mil_dtype)} are not supported")
        if count * dtype.itemsize != size:
            self._fail(offset, f"blob has {size} bytes, shape {list(shape)} of {dtype} needs {count * dtype.itemsize}")
        return raw.view(dtype).reshape(shape)

    def _metadata(self, offset: int) -> tuple[int, int, int, int, int]:
        if offset < _HEADER_SIZE or offset + _METADATA.size > self._buffer.size:
            self._fail(offset, f"offset outside the file ({self._buffer.size} bytes): the file is truncated")
        return _METADATA.unpack_from(self._map, offset)

    def _fail(self, offset: int, reason: str) -> NoReturn:
        raise PackageError(str(self.path), f"weight blob at offset {offset}: {reason}")
