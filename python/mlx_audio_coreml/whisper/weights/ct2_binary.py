"""The CTranslate2 `model.bin` container: read it into named numpy arrays, and write one (for tests).

Layout (binary version 6, little-endian): u32 version, string spec name, u32 spec revision,
u32 variable count; per variable: string name, u8 rank, u32 dims[rank], u8 dtype, u32 byte count,
raw bytes; then u32 alias count and (alias, target) string pairs. A string is u16 (length + 1),
UTF-8 bytes, NUL. Variables are views into one memory map, so reading is cheap.
"""

from __future__ import annotations

import os
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import CorruptModelFile

SUPPORTED_VERSIONS = (5, 6)
_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}  # 5 bf16: see _bf16
_BF16 = 5


@dataclass
class CT2Model:
    spec: str  # e.g. "WhisperSpec"
    revision: int
    variables: dict[str, np.ndarray]
    aliases: dict[str, str]  # alias name -> target variable name


class _Cursor:
    def __init__(self, data: memoryview, path: Path) -> None:
        self.data, self.offset, self.path = data, 0, path

    def take(self, size: int) -> memoryview:
        if self.offset + size > len(self.data):
            raise CorruptModelFile(str(self.path), f"truncated at byte {self.offset} (wanted {size} more)")
        chunk = self.data[self.offset : self.offset + size]
        self.offset += size
        return chunk

    def unpack(self, fmt: str) -> tuple[int, ...]:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))

    def string(self) -> str:
        (size,) = self.unpack("<H")
        raw = bytes(self.take(size))
        if size == 0 or raw[-1] != 0:
            raise CorruptModelFile(str(self.path), f"bad string at byte {self.offset - size}")
        return raw[:-1].decode("utf-8", "replace")


def read_model_bin(path: Path) -> CT2Model:
    """Parse `path`; raise CorruptModelFile on any inconsistency (never read past the end)."""
    path = Path(path)
    data = np.memmap(path, dtype=np.uint8, mode="r") if path.stat().st_size else np.zeros(0, np.uint8)
    cursor = _Cursor(data.data, path)  # the array's memoryview
    (version,) = cursor.unpack("<I")
    if version not in SUPPORTED_VERSIONS:
        raise CorruptModelFile(
            str(path), f"unsupported CTranslate2 binary version {version} (known {SUPPORTED_VERSIONS})"
        )
    spec = cursor.string()
    (revision,) = cursor.unpack("<I")
    (count,) = cursor.unpack("<I")
    variables = {}
    for _ in range(count):
        name, array = _read_variable(cursor, data)
        variables[name] = array
    aliases = {}
    (alias_count,) = cursor.unpack("<I")
    for _ in range(alias_count):
        alias = cursor.string()
        aliases[alias] = cursor.string()
    if cursor.offset != len(data):
        raise CorruptModelFile(str(path), f"{len(data) - cursor.offset} trailing bytes after the aliases")
    return CT2Model(spec, revision, variables, aliases)


def _read_variable(cursor: _Cursor, data: np.ndarray) -> tuple[str, np.ndarray]:
    name = cursor.string()
    (rank,) = cursor.unpack("<B")
    dims = cursor.unpack(f"<{rank}I") if rank else ()
    (code,) = cursor.unpack("<B")
    (nbytes,) = cursor.unpack("<I")
    start = cursor.offset
    cursor.take(nbytes)
    if code == _BF16:
        dtype: type = np.uint16
    elif code in _DTYPES:
        dtype = _DTYPES[code]
    else:
        raise CorruptModelFile(str(cursor.path), f"variable {name}: unknown dtype code {code}")
    expected = int(np.prod(dims, dtype=np.int64)) * np.dtype(dtype).itemsize
    if expected != nbytes:
        raise CorruptModelFile(
            str(cursor.path), f"variable {name}: {nbytes} bytes for shape {list(dims)} of {np.dtype(dtype)}"
        )
    array = data[start : start + nbytes].view(dtype).reshape(dims)
    return name, _bf16_to_float32(array) if code == _BF16 else array


def _bf16_to_float32(bits: np.ndarray) -> np.ndarray:
    return (bits.astype(np.uint32) << 16).view(np.float32)


def write_model_bin(
    path: Path, spec: str, revision: int, variables: dict[str, np.ndarray], aliases: dict[str, str] | None = None
) -> None:
    """Write a version-6 model.bin atomically (temp file, then rename)."""
    codes = {np.dtype(t): c for c, t in _DTYPES.items()}
    parts = [struct.pack("<I", 6), _pack_string(spec), struct.pack("<I", revision), struct.pack("<I", len(variables))]
    for name, value in variables.items():
        array = np.asarray(value, order="C")  # (ascontiguousarray would turn scalars into 1-D arrays)
        if array.dtype not in codes:
            raise ValueError(f"{name}: dtype {array.dtype} has no CTranslate2 code")
        header = _pack_string(name) + struct.pack(f"<B{array.ndim}I", array.ndim, *array.shape)
        parts += [header, struct.pack("<BI", codes[array.dtype], array.nbytes), array.tobytes()]
    parts.append(struct.pack("<I", len(aliases or {})))
    for alias, target in (aliases or {}).items():
        parts += [_pack_string(alias), _pack_string(target)]
    path = Path(path)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".partial")
    try:
        with os.fdopen(handle, "wb") as out:
            out.writelines(parts)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _pack_string(text: str) -> bytes:
    raw = text.encode("utf-8") + b"\0"
    return struct.pack("<H", len(raw)) + raw
