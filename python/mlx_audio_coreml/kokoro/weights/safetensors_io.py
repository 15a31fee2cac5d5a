"""Read and write .safetensors files with numpy alone (no torch, no safetensors package).

Format: u64 little-endian header length, a JSON header {name: {dtype, shape, data_offsets}}
(plus an optional `__metadata__`), then the raw little-endian bytes. bfloat16 is widened to float32
by shifting its bits, since numpy has no bfloat16.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ...errors.kokoro import KokoroWeightsError

_DTYPES = {
    "F32": np.float32,
    "F16": np.float16,
    "F64": np.float64,
    "I64": np.int64,
    "I32": np.int32,
    "I8": np.int8,
    "U8": np.uint8,
    "BOOL": np.bool_,
}


def read_safetensors(path: str | Path) -> dict[str, np.ndarray]:
    """Every tensor in the file; bfloat16 and float16 come back as float32."""
    data = Path(path).read_bytes()
    try:
        (size,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8 : 8 + size])
    except (struct.error, ValueError) as exc:
        raise KokoroWeightsError(str(path), f"not a safetensors file ({exc})") from exc
    body = memoryview(data)[8 + size :]
    out: dict[str, np.ndarray] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        out[name] = _decode(bytes(body[start:end]), info["dtype"], info["shape"], str(path), name)
    return out


def write_safetensors(path: str | Path, tensors: Mapping[str, np.ndarray]) -> None:
    """Write float32 tensors (sorted by name, as the safetensors library does)."""
    header: dict[str, object] = {}
    blobs: list[bytes] = []
    offset = 0
    for name in sorted(tensors):
        blob = np.ascontiguousarray(tensors[name], dtype="<f4").tobytes()
        header[name] = {
            "dtype": "F32",
            "shape": list(np.shape(tensors[name])),
            "data_offsets": [offset, offset + len(blob)],
        }
        blobs.append(blob)
        offset += len(blob)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)  # keep the data 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for blob in blobs:
            f.write(blob)


def _decode(raw: bytes, dtype: str, shape: list[int], path: str, name: str) -> np.ndarray:
    if dtype == "BF16":
        bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
        return bits.view(np.float32).reshape(shape)
    if dtype not in _DTYPES:
        raise KokoroWeightsError(path, f"tensor {name!r} has dtype {dtype}, which we do not read")
    array = np.frombuffer(raw, dtype=np.dtype(_DTYPES[dtype]).newbyteorder("<")).reshape(shape)
    return array.astype(np.float32) if dtype == "F16" else array.copy()
