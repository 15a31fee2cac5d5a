"""Hugging Face transformers Whisper folders (openai/whisper-* on the hub).

`config.json` names the dimensions its own way (d_model, encoder_layers, encoder_attention_heads,
num_mel_bins, vocab_size, max_source_positions, max_target_positions ...); `generation_config.json`
(when present) carries alignment_heads, suppress_tokens, begin_suppress_tokens and lang_to_id.
Weights are `model.safetensors` (or shards listed in `model.safetensors.index.json`) with names
like `model.encoder.layers.0.self_attn.k_proj.weight`; k_proj has no bias; convolutions are
(out, in, kernel) as in PyTorch; both position tables are stored; `proj_out.weight` is tied to the
token embedding and usually left out of the file.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import mlx.core as mx
import numpy as np
from mlx.utils import tree_flatten

from ...errors import CorruptModelFile, WeightsMismatch
from ...store.staging import staged_path
from ..model import ModelDimensions, Whisper
from . import WeightsFile, load_arrays

FORMAT = "transformers"
SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
_BLOCK = re.compile(r"^(encoder|decoder)\.layers\.(\d+)\.(.+)$")
_BLOCK_PARTS = {  # transformers' name inside a layer -> ours inside a block
    "self_attn.q_proj": "attn.query", "self_attn.k_proj": "attn.key", "self_attn.v_proj": "attn.value",
    "self_attn.out_proj": "attn.out", "self_attn_layer_norm": "attn_ln",
    "encoder_attn.q_proj": "cross_attn.query", "encoder_attn.k_proj": "cross_attn.key",
    "encoder_attn.v_proj": "cross_attn.value", "encoder_attn.out_proj": "cross_attn.out",
    "encoder_attn_layer_norm": "cross_attn_ln", "fc1": "mlp1", "fc2": "mlp2", "final_layer_norm": "mlp_ln",
}  # fmt: skip
_TOP = {
    "encoder.conv1.weight": "encoder.conv1.weight", "encoder.conv1.bias": "encoder.conv1.bias",
    "encoder.conv2.weight": "encoder.conv2.weight", "encoder.conv2.bias": "encoder.conv2.bias",
    "encoder.layer_norm.weight": "encoder.ln_post.weight", "encoder.layer_norm.bias": "encoder.ln_post.bias",
    "encoder.embed_positions.weight": "encoder.positional_embedding",
    "decoder.embed_tokens.weight": "decoder.token_embedding.weight",
    "decoder.embed_positions.weight": "decoder.positional_embedding",
    "decoder.layer_norm.weight": "decoder.ln.weight", "decoder.layer_norm.bias": "decoder.ln.bias",
}  # fmt: skip
_OURS_TO_THEIRS_TOP = {ours: theirs for theirs, ours in _TOP.items()}
_OURS_TO_THEIRS_BLOCK = {ours: theirs for theirs, ours in _BLOCK_PARTS.items()}


def detect(model_dir: Path) -> bool:
    model_dir = Path(model_dir)
    config = model_dir / "config.json"
    has_weights = (model_dir / SINGLE_FILE).is_file() or (model_dir / INDEX_FILE).is_file()
    return has_weights and config.is_file() and "d_model" in _json(config)


def read(model_dir: Path) -> WeightsFile:
    model_dir = Path(model_dir)
    config = _json(model_dir / "config.json")
    dims = _dimensions(config, model_dir)
    files = _weight_files(model_dir)
    raw: dict[str, Any] = {}
    for path in files:
        raw.update(load_arrays(path))
    tensors, unexpected, file_names = {}, [], {}
    for name, value in raw.items():
        ours = _our_name(name.removeprefix("model."))
        if ours is None:
            unexpected.append(name)
        elif ours == "proj_out":  # tied output projection, stored anyway: must equal the embedding
            continue
        else:
            tensors[ours] = value.transpose(0, 2, 1) if ours.endswith(("conv1.weight", "conv2.weight")) else value
            file_names[ours] = name
    if "proj_out.weight" in raw and "decoder.token_embedding.weight" in tensors:
        if not mx.array_equal(raw["proj_out.weight"], tensors["decoder.token_embedding.weight"]).item():
            unexpected.append("proj_out.weight (differs from the tied token embedding)")
    if unexpected:
        raise WeightsMismatch([], unexpected)
    positions = tensors.pop("encoder.positional_embedding", None)
    positions_np = np.array(positions.astype(mx.float32)) if positions is not None else None
    config_keys = _generation_config(model_dir, config)
    return WeightsFile(FORMAT, dims, tensors, files, config_keys, encoder_positions=positions_np, file_names=file_names)


def _our_name(name: str) -> str | None:
    if name in _TOP:
        return _TOP[name]
    if name == "proj_out.weight":
        return "proj_out"
    match = _BLOCK.match(name)
    if match is None:
        return None
    stack, layer, rest = match.groups()
    part, _, field = rest.rpartition(".")
    if part not in _BLOCK_PARTS or field not in ("weight", "bias"):
        return None
    return f"{stack}.blocks.{layer}.{_BLOCK_PARTS[part]}.{field}"


def _dimensions(config: dict[str, Any], model_dir: Path) -> ModelDimensions:
    try:
        return ModelDimensions(
            n_mels=int(config["num_mel_bins"]),
            n_audio_ctx=int(config["max_source_positions"]),
            n_audio_state=int(config["d_model"]),
            n_audio_head=int(config["encoder_attention_heads"]),
            n_audio_layer=int(config["encoder_layers"]),
            n_vocab=int(config["vocab_size"]),
            n_text_ctx=int(config["max_target_positions"]),
            n_text_state=int(config["d_model"]),
            n_text_head=int(config["decoder_attention_heads"]),
            n_text_layer=int(config["decoder_layers"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CorruptModelFile(str(model_dir / "config.json"), f"bad or missing dimension {exc}") from exc


def _weight_files(model_dir: Path) -> list[Path]:
    if (model_dir / SINGLE_FILE).is_file():
        return [model_dir / SINGLE_FILE]
    index = _json(model_dir / INDEX_FILE)
    names = sorted(set(index.get("weight_map", {}).values()))
    missing = [n for n in names if not (model_dir / n).is_file()]
    if not names or missing:
        raise CorruptModelFile(str(model_dir / INDEX_FILE), f"shards missing: {missing or 'none listed'}")
    return [model_dir / n for n in names]


def _generation_config(model_dir: Path, config: dict[str, Any]) -> dict[str, Any]:
    """Decoding facts: generation_config.json first, then the same keys in config.json."""
    path = model_dir / "generation_config.json"
    source = {**config, **(_json(path) if path.is_file() else {})}
    out: dict[str, Any] = {}
    if source.get("alignment_heads"):
        out["alignment_heads"] = [list(map(int, pair)) for pair in source["alignment_heads"]]
    if source.get("suppress_tokens") is not None:
        out["suppress_ids"] = list(source["suppress_tokens"])
    if source.get("begin_suppress_tokens") is not None:
        out["suppress_ids_begin"] = list(source["begin_suppress_tokens"])
    if source.get("lang_to_id"):
        out["lang_ids"] = sorted(int(v) for v in source["lang_to_id"].values())
    return out


def _json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CorruptModelFile(str(path), f"not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise CorruptModelFile(str(path), "not a JSON object")
    return value


def save(model: Whisper, out_dir: Path, *, generation: dict[str, Any] | None = None) -> Path:
    """Write `model` the way openai/whisper-* repositories lay it out (float as stored in `model`).

    `generation` adds keys to generation_config.json (suppress_tokens, lang_to_id ...). The folder
    appears whole or not at all.
    """
    out_dir = Path(out_dir)
    tensors: dict[str, mx.array] = {}
    parameters: dict[str, mx.array] = dict(tree_flatten(model.parameters()))
    for ours, value in parameters.items():
        if ours.endswith(("conv1.weight", "conv2.weight")):
            value = value.transpose(0, 2, 1)  # (out, k, in) -> PyTorch's (out, in, k)
        tensors["model." + _theirs(ours)] = value
    positions = model.encoder._positional_embedding
    tensors["model.encoder.embed_positions.weight"] = positions.astype(model.dtype)
    dims = model.dims
    config = {
        "architectures": ["WhisperForConditionalGeneration"], "model_type": "whisper",
        "d_model": dims.n_audio_state, "encoder_layers": dims.n_audio_layer, "decoder_layers": dims.n_text_layer,
        "encoder_attention_heads": dims.n_audio_head, "decoder_attention_heads": dims.n_text_head,
        "encoder_ffn_dim": 4 * dims.n_audio_state, "decoder_ffn_dim": 4 * dims.n_text_state,
        "num_mel_bins": dims.n_mels, "vocab_size": dims.n_vocab, "max_source_positions": dims.n_audio_ctx,
        "max_target_positions": dims.n_text_ctx, "activation_function": "gelu", "scale_embedding": False,
        "tie_word_embeddings": True, "torch_dtype": "float16" if model.dtype == mx.float16 else "float32",
    }  # fmt: skip
    generation_config = {"alignment_heads": np.array(model.alignment_heads).tolist(), **(generation or {})}
    _write_folder(out_dir, tensors, {"config.json": config, "generation_config.json": generation_config})
    return out_dir


def _theirs(ours: str) -> str:
    if ours in _OURS_TO_THEIRS_TOP:
        return _OURS_TO_THEIRS_TOP[ours]
    stack, _, layer, *rest = ours.split(".")
    part, field = ".".join(rest[:-1]), rest[-1]
    return f"{stack}.layers.{layer}.{_OURS_TO_THEIRS_BLOCK[part]}.{field}"


def _write_folder(out_dir: Path, tensors: dict[str, mx.array], json_files: dict[str, Any]) -> None:
    with staged_path(out_dir) as staging:
        staging.mkdir()
        mx.save_safetensors(str(staging / SINGLE_FILE), tensors, metadata={"format": "pt"})
        for name, value in json_files.items():
            (staging / name).write_text(json.dumps(value, indent=2), encoding="utf-8")
