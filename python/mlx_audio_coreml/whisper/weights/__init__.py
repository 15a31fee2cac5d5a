"""Whisper weights on disk, one module per publisher's format, all read into one shape.

Each format module (`mlx`, `transformers`, `ctranslate2`) has `detect(model_dir) -> bool` and
`read(model_dir) -> WeightsFile`: the model dimensions, every tensor under this package's parameter
names (see `whisper/model.py`), and what the folder says about decoding (alignment heads, tokens to
suppress). Strict matching against the model happens in `whisper/loading.py`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlx.core as mx
import numpy as np

from ...errors import CorruptModelFile
from ..model import ModelDimensions

# Keys of `WeightsFile.config` that formats may fill; `None` means the folder does not say.
CONFIG_KEYS = ("alignment_heads", "suppress_ids", "suppress_ids_begin", "lang_ids")


@dataclass
class WeightsFile:
    format: str  # "mlx" | "transformers" | "ctranslate2"
    dims: ModelDimensions
    tensors: dict[str, Any]  # our parameter name -> numpy or MLX array, in the file's dtype
    files: list[Path]  # the weight files read, for hashing
    config: dict[str, Any] = field(default_factory=dict)  # CONFIG_KEYS found in the folder
    quantization: dict[str, int] | None = None  # {"group_size", "bits"} when stored quantized
    encoder_positions: np.ndarray | None = None  # a stored encoder position table, when the file has one
    file_names: dict[str, str] = field(default_factory=dict)  # our name -> the file's, where they differ


def load_arrays(path: Path) -> dict[str, mx.array]:
    """The named arrays of a .safetensors or .npz file; CorruptModelFile when MLX cannot read them."""
    try:
        loaded = mx.load(str(path))
    except Exception as exc:  # noqa: BLE001  (MLX raises plain RuntimeError/ValueError for bad files)
        raise CorruptModelFile(str(path), f"cannot read weights: {exc}") from exc
    if not isinstance(loaded, dict):  # a lone array (.npy) has no parameter names
        raise CorruptModelFile(str(path), "cannot read weights: not a file of named arrays")
    return loaded


def sha256_of_files(paths: list[Path]) -> str:
    """Hex digest over the bytes of `paths` in order (one file: the usual sha256 of that file)."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()
