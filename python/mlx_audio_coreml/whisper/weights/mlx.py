"""MLX-format Whisper folders, as mlx-community publishes them (made by mlx-examples' convert.py).

`config.json` holds the dimensions under their own names (n_mels, n_audio_ctx, ...) plus
"model_type": "whisper" and, for quantized folders, "quantization": {"group_size", "bits"}.
The weights are `weights.safetensors` (newer) or `weights.npz` (older): the model's parameters
flattened with dots, convolutions already (out, kernel, in), and an "alignment_heads" entry, an
integer (K, 2) table of (layer, head), because mlx_whisper keeps it as a public array attribute.
Quantized folders store `<layer>.weight` packed in uint32 with `<layer>.scales` and `.biases`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import mlx.core as mx
import numpy as np
from mlx.utils import tree_flatten

from ...errors import CorruptModelFile
from ...store.staging import staged_path
from ..model import ModelDimensions, Whisper
from . import WeightsFile, load_arrays

FORMAT = "mlx"
WEIGHT_NAMES = ("weights.safetensors", "weights.npz", "model.safetensors")  # the loader's preference order
_DIM_KEYS = {f.name for f in fields(ModelDimensions)}


def detect(model_dir: Path) -> bool:
    config = _read_config(Path(model_dir), required=False)
    return config is not None and "n_audio_ctx" in config and _weights_path(Path(model_dir)) is not None


def read(model_dir: Path) -> WeightsFile:
    model_dir = Path(model_dir)
    config = _read_config(model_dir, required=True) or {}
    missing = sorted(_DIM_KEYS - set(config))
    if missing:
        raise CorruptModelFile(str(model_dir / "config.json"), f"missing dimension keys {missing}")
    dims = ModelDimensions(**{key: int(config[key]) for key in _DIM_KEYS})
    path = _weights_path(model_dir)
    assert path is not None  # detect() checked
    tensors: dict[str, Any] = load_arrays(path)
    extra: dict[str, Any] = {}
    heads = tensors.pop("alignment_heads", None)
    if heads is not None:
        extra["alignment_heads"] = np.array(heads).astype(np.int64).reshape(-1, 2).tolist()
    tensors.pop("encoder.positional_embedding", None)  # a derived buffer some exports include
    quantization = config.get("quantization")
    if quantization is not None:
        quantization = {"group_size": int(quantization["group_size"]), "bits": int(quantization["bits"])}
    return WeightsFile(FORMAT, dims, tensors, [path], extra, quantization=quantization)


def save(
    model: Whisper, out_dir: Path, *, file_name: str = "weights.safetensors", quantization: dict[str, int] | None = None
) -> Path:
    """Write `model` as an MLX-format folder, the way mlx-examples' convert.py lays it out.

    The folder appears whole or not at all (written beside it, then renamed). `quantization` is
    recorded in config.json when `model` was quantized with those settings.
    """
    out_dir = Path(out_dir)
    weights = dict(tree_flatten(model.parameters()))
    weights["alignment_heads"] = model.alignment_heads.astype(mx.int64)
    config: dict[str, Any] = {**asdict(model.dims), "model_type": "whisper"}
    if quantization is not None:
        config["quantization"] = dict(quantization)
    with staged_path(out_dir) as staging:
        staging.mkdir()
        if file_name.endswith(".npz"):
            mx.savez(str(staging / file_name), **weights)
        else:
            mx.save_safetensors(str(staging / file_name), weights, metadata={"format": "mlx"})
        (staging / "config.json").write_text(json.dumps(config, indent=4), encoding="utf-8")
    return out_dir


def _weights_path(model_dir: Path) -> Path | None:
    for name in WEIGHT_NAMES:
        if (model_dir / name).is_file():
            return model_dir / name
    return None


def _read_config(model_dir: Path, required: bool) -> dict[str, Any] | None:
    path = model_dir / "config.json"
    if not path.is_file():
        if required:
            raise CorruptModelFile(str(path), "missing")
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CorruptModelFile(str(path), f"not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise CorruptModelFile(str(path), "not a JSON object")
    return value
