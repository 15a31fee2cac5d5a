"""Each Kokoro weight format read into the canonical state (strict: every key checked against the config).

- hexgrad's Kokoro-82M: `kokoro-v1_0.pth`, one state dict per part (`bert`, `bert_encoder`,
  `predictor`, `text_encoder`, `decoder`), keys prefixed `module.`, weight norm unfolded;
- mlx-audio / mlx-community: a `.safetensors` after mlx-audio's `sanitize` (LSTM `Wx_forward`...,
  the text encoder's LayerNorm as weight/bias, convs channels-last, weight_g/weight_v);
- ours (what the installer writes): `model.safetensors` already canonical;
- kokoro-onnx: `kokoro-v1.0.onnx` (float) or the int8 export, read by following the graph.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ...errors.kokoro import KokoroWeightsError
from .canonical import Shapes, check_shapes
from .normalize import drop_unused, fix_layouts, fold_weight_norm
from .pth import read_pth
from .safetensors_io import read_safetensors

HEXGRAD_PARTS = ("bert", "bert_encoder", "predictor", "text_encoder", "decoder")
_MLX_LSTM = {"Wx": "weight_ih_l0", "Wh": "weight_hh_l0", "bias_ih": "bias_ih_l0", "bias_hh": "bias_hh_l0"}


def canonicalize(raw: Mapping[str, np.ndarray], expected: Shapes, source: str) -> dict[str, np.ndarray]:
    """Fold weight norm, drop unused tensors, fix layouts, then check every key and shape.

    `expected` is canonical_shapes(config) (tests pass smaller tables)."""
    state = fix_layouts(drop_unused(fold_weight_norm(raw, source), source), expected)
    check_shapes(state, expected)
    return state


def load_pth_state(path: Path, expected: Shapes) -> dict[str, np.ndarray]:
    """hexgrad's checkpoint: {part: {'module.<key>': tensor}} flattened to '<part>.<key>'."""
    tree = read_pth(path)
    if not isinstance(tree, Mapping) or not set(tree) <= set(HEXGRAD_PARTS):
        found = sorted(tree) if isinstance(tree, Mapping) else type(tree).__name__
        raise KokoroWeightsError(str(path), f"expected a dict of {list(HEXGRAD_PARTS)}, found {found}")
    raw: dict[str, np.ndarray] = {}
    for part, sub in tree.items():
        for key, value in sub.items():
            raw[f"{part}.{key.removeprefix('module.')}"] = np.asarray(value)
    return canonicalize(raw, expected, str(path))


def load_safetensors_state(path: Path, expected: Shapes) -> dict[str, np.ndarray]:
    """Ours (canonical) or mlx-audio's layout; the names are mapped back before the strict check."""
    tensors = read_safetensors(path)
    if any(k.endswith((".scales", ".biases")) for k in tensors):
        raise KokoroWeightsError(
            str(path), "quantized MLX weights (scales/biases) are not read; use a bf16 or fp32 file"
        )
    return canonicalize({_from_mlx_audio(k): v for k, v in tensors.items()}, expected, str(path))


def _from_mlx_audio(key: str) -> str:
    """mlx-audio names -> PyTorch names (identity on canonical names)."""
    match = re.fullmatch(r"(.*)\.(Wx|Wh|bias_ih|bias_hh)_(forward|backward)", key)
    if match:
        suffix = "_reverse" if match.group(3) == "backward" else ""
        return f"{match.group(1)}.{_MLX_LSTM[match.group(2)]}{suffix}"
    match = re.fullmatch(r"(text_encoder\.cnn\.\d+\.1)\.(weight|bias)", key)
    if match:  # mlx-audio renames the text encoder's LayerNorm gamma/beta
        return f"{match.group(1)}.{'gamma' if match.group(2) == 'weight' else 'beta'}"
    return key
