"""CTranslate2 Whisper weights (faster-whisper's format): `model.bin` + `config.json` -> our tensors.

Layout facts (the spec `WhisperSpec`): self-attention q/k/v are one fused matrix (rows q, k, v)
and cross-attention k/v another; CTranslate2 adds a zero key bias, which we drop (a key bias adds
the same amount to every score of a query row, so softmax ignores it). Convolutions are
(out, in, kernel); MLX wants (out, kernel, in). The output projection aliases the token embedding.
Encoder positions are stored (sinusoids), decoder positions are learned. Weights quantized by
CTranslate2 (int8/int16 with a per-row `weight_scale`) are dequantized to float32 here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import CorruptModelFile, WeightsMismatch
from ..model import ModelDimensions
from . import WeightsFile
from .ct2_binary import read_model_bin

FORMAT = "ctranslate2"
WEIGHTS_NAME = "model.bin"
# Scalars the spec stores for CTranslate2's own use; we read num_heads and accept the rest.
_SPEC_SCALARS = {"activation", "alibi", "alignment_heads", "alignment_layer", "num_heads", "pre_norm",
                 "scale_embeddings", "start_from_zero_embedding", "scale_outputs", "layernorm_embedding"}  # fmt: skip
_LAYER = re.compile(r"^(encoder|decoder)/layer_(\d+)/(\w+)/(\w+)(?:/(\w+))?$")
_PLAIN = {  # (sub-module, piece) inside a layer -> our name inside the block
    ("self_attention", "layer_norm"): "attn_ln",
    ("attention", "layer_norm"): "cross_attn_ln",
    ("attention", "linear_0"): "cross_attn.query",
    ("ffn", "layer_norm"): "mlp_ln",
    ("ffn", "linear_0"): "mlp1",
    ("ffn", "linear_1"): "mlp2",
}
_FIELD = {"gamma": "weight", "beta": "bias", "weight": "weight", "bias": "bias"}


def detect(model_dir: Path) -> bool:
    return (Path(model_dir) / WEIGHTS_NAME).is_file()


def read(model_dir: Path) -> WeightsFile:
    model_dir = Path(model_dir)
    path = model_dir / WEIGHTS_NAME
    model = read_model_bin(path)
    if model.spec != "WhisperSpec":
        raise CorruptModelFile(str(path), f"spec is {model.spec!r}, not WhisperSpec")
    variables = _dequantize(model.variables)
    for alias, target in model.aliases.items():
        if alias != "decoder/projection/weight" or target != "decoder/embeddings/weight":
            raise WeightsMismatch([], [f"{alias} (alias of {target})"])
    tensors, unexpected, scalars = {}, [], {}
    for name, value in variables.items():
        if name == "decoder/projection/weight":  # stored in full rather than aliased: must be the embedding
            embedding = variables.get("decoder/embeddings/weight")
            if embedding is None or not np.array_equal(value, embedding):
                unexpected.append(name)
            continue
        if name.split("/")[-1] in _SPEC_SCALARS and value.ndim == 0:
            scalars[name] = value.item()
            continue
        mapped = _map_variable(name, value)
        if mapped is None:
            unexpected.append(name)
        tensors.update(mapped or {})
    if unexpected:
        raise WeightsMismatch([], unexpected)
    positions = tensors.pop("encoder.positional_embedding", None)
    dims = _dimensions(tensors, positions, scalars, path)
    return WeightsFile(FORMAT, dims, tensors, [path], _config(model_dir), encoder_positions=positions)


def _dequantize(variables: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Undo CTranslate2's per-row quantization: w = q / scale (scale = 127 / max|row| for int8)."""
    out = {}
    for name, value in variables.items():
        if name.endswith("/weight_scale"):
            continue
        scale = variables.get(name + "_scale")
        if scale is not None and value.dtype in (np.int8, np.int16):
            value = value.astype(np.float32) / scale.astype(np.float32).reshape(-1, *([1] * (value.ndim - 1)))
        out[name] = value
    return out


def _map_variable(name: str, value: np.ndarray) -> dict[str, np.ndarray] | None:
    """Our tensors for one CTranslate2 variable, or None when the name means nothing to us."""
    top = {
        "encoder/conv1/weight": "encoder.conv1.weight", "encoder/conv1/bias": "encoder.conv1.bias",
        "encoder/conv2/weight": "encoder.conv2.weight", "encoder/conv2/bias": "encoder.conv2.bias",
        "encoder/layer_norm/gamma": "encoder.ln_post.weight", "encoder/layer_norm/beta": "encoder.ln_post.bias",
        "encoder/position_encodings/encodings": "encoder.positional_embedding",
        "decoder/embeddings/weight": "decoder.token_embedding.weight",
        "decoder/position_encodings/encodings": "decoder.positional_embedding",
        "decoder/layer_norm/gamma": "decoder.ln.weight", "decoder/layer_norm/beta": "decoder.ln.bias",
    }  # fmt: skip
    if name in top:
        if name.endswith("conv1/weight") or name.endswith("conv2/weight"):
            value = value.transpose(0, 2, 1)  # (out, in, k) -> (out, k, in)
        return {top[name]: value}
    match = _LAYER.match(name)
    if match is None or match.group(5) not in _FIELD:
        return None
    stack, layer, module, piece, field = match.groups()
    prefix = f"{stack}.blocks.{layer}."
    field = _FIELD[field]
    if (module, piece) in _PLAIN:
        return {prefix + _PLAIN[(module, piece)] + "." + field: value}
    attn = "attn" if module == "self_attention" else "cross_attn"
    if (module, piece) in (("self_attention", "linear_1"), ("attention", "linear_2")):
        return {f"{prefix}{attn}.out.{field}": value}
    if (module, piece) == ("self_attention", "linear_0"):
        return _split_fused(prefix + attn, value, ("query", "key", "value"), field)
    if (module, piece) == ("attention", "linear_1"):
        return _split_fused(prefix + attn, value, ("key", "value"), field)
    return None


def _split_fused(prefix: str, value: np.ndarray, names: tuple[str, ...], field: str) -> dict[str, np.ndarray]:
    parts = np.split(value, len(names), axis=0)  # rows stacked in order
    return {f"{prefix}.{n}.{field}": p for n, p in zip(names, parts) if not (n == "key" and field == "bias")}


def _dimensions(
    tensors: dict[str, np.ndarray], positions: np.ndarray | None, scalars: dict[str, Any], path: Path
) -> ModelDimensions:
    try:
        conv1 = tensors["encoder.conv1.weight"]  # (out, k, in)
        embedding = tensors["decoder.token_embedding.weight"]
        text_positions = tensors["decoder.positional_embedding"]
    except KeyError as exc:
        raise WeightsMismatch([exc.args[0]], []) from exc
    if positions is None:
        raise WeightsMismatch(["encoder.positional_embedding"], [])
    return ModelDimensions(
        n_mels=conv1.shape[2],
        n_audio_ctx=positions.shape[0],
        n_audio_state=conv1.shape[0],
        n_audio_head=_heads(scalars, "encoder", path),
        n_audio_layer=_count_layers(tensors, "encoder"),
        n_vocab=embedding.shape[0],
        n_text_ctx=text_positions.shape[0],
        n_text_state=embedding.shape[1],
        n_text_head=_heads(scalars, "decoder", path),
        n_text_layer=_count_layers(tensors, "decoder"),
    )


def _heads(scalars: dict[str, Any], stack: str, path: Path) -> int:
    if f"{stack}/num_heads" not in scalars:
        raise CorruptModelFile(str(path), f"{stack}/num_heads is missing")
    return int(scalars[f"{stack}/num_heads"])


def _count_layers(tensors: dict[str, np.ndarray], stack: str) -> int:
    return len({name.split(".")[2] for name in tensors if name.startswith(f"{stack}.blocks.")})


def _config(model_dir: Path) -> dict[str, Any]:
    """alignment_heads, suppress_ids, suppress_ids_begin, lang_ids from config.json, when present."""
    path = model_dir / "config.json"
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CorruptModelFile(str(path), f"not JSON: {exc}") from exc
    keys = ("alignment_heads", "suppress_ids", "suppress_ids_begin", "lang_ids")
    return {key: raw[key] for key in keys if key in raw}
