"""hexgrad's Kokoro-82M config.json, rebuilt from a canonical state's shapes and the published values.

The int8 ONNX export carries no config. Every size that a tensor shows is read from the state
(vocabulary, widths, kernel sizes, upsampling); what no shape shows is Kokoro-82M v1.0's published
value (dropouts, n_mels, attention heads, ALBERT depth, the resblock dilations). The result is then
checked against the state key by key (canonical.check_state), so a state that is not Kokoro-82M's
shape fails here rather than in the model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .canonical import check_state

# Values of hexgrad/Kokoro-82M's config.json that no tensor shape determines.
PUBLISHED: dict[str, Any] = {
    "dim_in": 64,
    "dropout": 0.2,
    "max_conv_dim": 512,
    "multispeaker": True,
    "n_mels": 80,
    "plbert": {"num_attention_heads": 12, "num_hidden_layers": 12, "dropout": 0.1},
    "istftnet": {"resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]]},
}


def config_from_state(state: Mapping[str, np.ndarray], vocab: Mapping[str, int]) -> dict[str, Any]:
    """config.json's content for this state and vocabulary (phoneme -> id)."""
    n_token, hidden = state["text_encoder.embedding.weight"].shape
    n_layer = sum(1 for k in state if k.startswith("text_encoder.cnn.") and k.endswith(".0.weight"))
    ups = sorted(k for k in state if k.startswith("decoder.generator.ups.") and k.endswith(".weight"))
    n_res = sum(1 for k in state if k.startswith("decoder.generator.resblocks.") and k.endswith(".convs1.0.weight"))
    n_kernels = n_res // max(len(ups), 1)
    ups_w = [state[k] for k in ups]
    # iSTFTNet's upsampling kernels are twice their strides (20/10, 12/6); noise_convs' shapes, checked
    # below, confirm every stride but the last
    rates = [int(w.shape[2]) // 2 for w in ups_w]
    conv_post = state["decoder.generator.conv_post.weight"]
    bert_map = state["bert.encoder.embedding_hidden_mapping_in.weight"]
    ffn = state["bert.encoder.albert_layer_groups.0.albert_layers.0.ffn.weight"]
    return {
        "istftnet": {
            "upsample_kernel_sizes": [int(w.shape[2]) for w in ups_w],
            "upsample_rates": rates,
            "gen_istft_hop_size": (int(conv_post.shape[0]) - 2) // 4,  # no tensor shows the hop: n_fft / 4 (5 for 20)
            "gen_istft_n_fft": int(conv_post.shape[0]) - 2,
            "resblock_dilation_sizes": PUBLISHED["istftnet"]["resblock_dilation_sizes"][:n_kernels],
            "resblock_kernel_sizes": [
                int(state[f"decoder.generator.resblocks.{j}.convs1.0.weight"].shape[2]) for j in range(n_kernels)
            ],
            "upsample_initial_channel": int(ups_w[0].shape[0]),
        },
        "dim_in": PUBLISHED["dim_in"],
        "dropout": PUBLISHED["dropout"],
        "hidden_dim": int(hidden),
        "max_conv_dim": PUBLISHED["max_conv_dim"],
        "max_dur": int(state["predictor.duration_proj.linear_layer.weight"].shape[0]),
        "multispeaker": PUBLISHED["multispeaker"],
        "n_layer": n_layer,
        "n_mels": PUBLISHED["n_mels"],
        "n_token": int(n_token),
        "style_dim": int(state["decoder.encode.norm1.fc.weight"].shape[1]),
        "text_encoder_kernel_size": int(state["text_encoder.cnn.0.0.weight"].shape[2]),
        "plbert": {
            "hidden_size": int(bert_map.shape[0]),
            "num_attention_heads": PUBLISHED["plbert"]["num_attention_heads"],
            "intermediate_size": int(ffn.shape[0]),
            "max_position_embeddings": int(state["bert.embeddings.position_embeddings.weight"].shape[0]),
            "num_hidden_layers": PUBLISHED["plbert"]["num_hidden_layers"],
            "dropout": PUBLISHED["plbert"]["dropout"],
        },
        "vocab": {str(k): int(v) for k, v in vocab.items()},
    }


def checked_config(state: Mapping[str, np.ndarray], vocab: Mapping[str, int]) -> dict[str, Any]:
    """config_from_state, verified: the config's canonical keys and shapes are exactly the state's."""
    config = config_from_state(state, vocab)
    check_state(state, config)
    return config
