"""A tiny random Kokoro model folder for the session tests (seconds to build and to speak).

Small text side (hidden 32, one layer, a 16-wide ALBERT); the decoder keeps hexgrad's fixed widths
(1024 hidden, 512 into the generator), so the folder holds ~41 M random weights. The duration
projection's bias is set very negative, so every token lasts the minimum single frame and a
sentence is a fraction of a second of (noise) audio. Two voices: af_test and bf_other.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from text_support import VOCAB

from mlx_audio_coreml.kokoro.weights.canonical import canonical_shapes
from mlx_audio_coreml.kokoro.weights.safetensors_io import write_safetensors

TINY_CONFIG = {
    "n_token": 178, "hidden_dim": 32, "style_dim": 128, "n_layer": 1, "n_mels": 80, "max_dur": 50,
    "dropout": 0.2, "text_encoder_kernel_size": 5,
    "istftnet": {
        "upsample_kernel_sizes": [20, 12], "upsample_rates": [10, 6], "gen_istft_hop_size": 5,
        "gen_istft_n_fft": 20, "resblock_dilation_sizes": [[1, 3, 5]], "resblock_kernel_sizes": [3],
        "upsample_initial_channel": 512,
    },
    "plbert": {
        "hidden_size": 16, "num_attention_heads": 2, "intermediate_size": 24, "max_position_embeddings": 512,
        "num_hidden_layers": 1, "dropout": 0.1,
    },
}  # fmt: skip
VOICES = ("af_test", "bf_other")
SAMPLES_PER_FRAME = 600  # 24 kHz: 300 samples per F0 frame, two F0 frames per text frame


def build_tiny_folder(folder: Path, seed: int = 0) -> Path:
    """Write config.json, model.safetensors and voices/*.npy for a random tiny Kokoro into `folder`."""
    rng = np.random.default_rng(seed)
    # Small weights: at 0.1 the generator's exp() overflows and the audio is NaN.
    config = {**TINY_CONFIG, "vocab": dict(VOCAB)}
    state = {k: (0.02 * rng.standard_normal(s)).astype(np.float32) for k, s in canonical_shapes(config).items()}
    state["predictor.duration_proj.linear_layer.bias"][:] = -10.0  # one frame per token
    (folder / "voices").mkdir(parents=True)
    write_safetensors(folder / "model.safetensors", state)
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    for name in VOICES:
        np.save(folder / "voices" / f"{name}.npy", (0.1 * rng.standard_normal((510, 1, 256))).astype(np.float32))
    return folder
