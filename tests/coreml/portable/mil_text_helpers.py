"""Helpers for the text-MIL tests: hand-written compiled-model folders and MIL v2 weight files."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

import mlx_audio_coreml  # noqa: F401  (fast BLAS before MLX)
from mlx_audio_coreml.coreml.portable import PortableModel, PortableRuntime

# blob storage codes of the MIL weight file format (version 2)
_STORAGE = {
    np.dtype(np.float16): 1,
    np.dtype(np.float32): 2,
    np.dtype(np.uint8): 3,
    np.dtype(np.int8): 4,
    np.dtype(np.int32): 14,
}


def weight_file(arrays: list[np.ndarray], gap: int = 0) -> tuple[bytes, list[int]]:
    """A weight.bin holding `arrays` (each record 64-byte aligned, `gap` extra bytes between them)
    and the offset of each array's metadata record."""
    data = bytearray(64)
    struct.pack_into("<II", data, 0, len(arrays), 2)
    offsets = []
    for array in arrays:
        data.extend(b"\0" * gap)
        data.extend(b"\0" * (-len(data) % 64))
        offsets.append(len(data))
        payload = np.ascontiguousarray(array).tobytes()
        record = bytearray(64)
        struct.pack_into("<IIQQI", record, 0, 0xDEADBEEF, _STORAGE[array.dtype], len(payload), len(data) + 64, 0)
        data.extend(record)
        data.extend(payload)
    return bytes(data), offsets


def compiled_folder(
    root: Path, name: str, program: str, *, weights: bytes | None = None, metadata: object = None
) -> Path:
    """Write `<root>/<name>.mlmodelc` with model.mil, optional weights/weight.bin and metadata.json."""
    folder = root / f"{name}.mlmodelc"
    (folder / "weights").mkdir(parents=True)
    (folder / "model.mil").write_text(program)
    if weights is not None:
        (folder / "weights" / "weight.bin").write_bytes(weights)
    if metadata is not None:
        (folder / "metadata.json").write_text(json.dumps(metadata))
    return folder


def load(folder: Path, **kwargs) -> PortableModel:
    return PortableRuntime(**kwargs).load(folder)


def feature(name: str, data_type: str, shape: list[int]) -> dict[str, str]:
    """One metadata.json schema entry, as Apple's compiler writes it."""
    return {
        "hasShapeFlexibility": "0",
        "isOptional": "0",
        "dataType": data_type,
        "shortDescription": "",
        "shape": json.dumps(shape),
        "name": name,
        "type": "MultiArray",
        "formattedType": f"MultiArray ({data_type} {' × '.join(map(str, shape))})",
    }
