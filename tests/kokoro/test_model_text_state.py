"""KokoroConfig from hexgrad's config.json, and strict loading of a canonical state into KokoroModel."""

from __future__ import annotations

import json
from pathlib import Path

import mlx.core as mx
import model_text_reference as ref
import numpy as np
import pytest

from mlx_audio_coreml.errors import KokoroConfigError, KokoroStateMismatch, WeightsMismatch
from mlx_audio_coreml.kokoro.config import KokoroConfig, PLBertConfig
from mlx_audio_coreml.kokoro.model import KokoroModel
from mlx_audio_coreml.kokoro.weights.safetensors_io import read_safetensors

# hexgrad/Kokoro-82M config.json, less most of its vocabulary.
HEXGRAD_CONFIG = {
    "istftnet": {
        "upsample_kernel_sizes": [20, 12],
        "upsample_rates": [10, 6],
        "gen_istft_hop_size": 5,
        "gen_istft_n_fft": 20,
        "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
        "resblock_kernel_sizes": [3, 7, 11],
        "upsample_initial_channel": 512,
    },
    "dim_in": 64,
    "dropout": 0.2,
    "hidden_dim": 512,
    "max_conv_dim": 512,
    "max_dur": 50,
    "multispeaker": True,
    "n_layer": 3,
    "n_mels": 80,
    "n_token": 178,
    "style_dim": 128,
    "text_encoder_kernel_size": 5,
    "plbert": {
        "hidden_size": 768,
        "num_attention_heads": 12,
        "intermediate_size": 2048,
        "max_position_embeddings": 512,
        "num_hidden_layers": 12,
        "dropout": 0.1,
    },
    "vocab": {";": 1, ":": 2, ",": 3, "a": 43, "ə": 83},
}
TINY = KokoroConfig(
    n_token=9,
    hidden_dim=8,
    style_dim=4,
    n_layer=1,
    max_dur=5,
    text_encoder_kernel_size=3,
    plbert=PLBertConfig(
        hidden_size=8,
        num_attention_heads=2,
        intermediate_size=8,
        max_position_embeddings=16,
        num_hidden_layers=1,
        embedding_size=4,
    ),
)


def test_config_reads_hexgrad_json_and_ignores_unused_keys() -> None:
    cfg = KokoroConfig.from_dict(HEXGRAD_CONFIG)
    assert cfg == KokoroConfig(vocab=cfg.vocab)  # the defaults are Kokoro-82M's
    assert cfg.istftnet.resblock_dilation_sizes == ((1, 3, 5),) * 3
    assert cfg.plbert.num_hidden_layers == 12 and cfg.plbert.embedding_size == 128
    assert cfg.vocab["ə"] == 83


def test_config_round_trips_through_to_dict() -> None:
    cfg = KokoroConfig.from_dict(HEXGRAD_CONFIG)
    assert KokoroConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.to_dict()["istftnet"]["upsample_rates"] == [10, 6]


def test_config_names_every_missing_required_key() -> None:
    d = {k: v for k, v in HEXGRAD_CONFIG.items() if k not in ("plbert", "max_dur")}
    with pytest.raises(KokoroConfigError) as info:
        KokoroConfig.from_dict(d)
    assert info.value.missing == ["max_dur", "plbert"]


def test_full_model_keys_are_hexgrads_text_side_names() -> None:
    keys = KokoroModel(KokoroConfig(), with_decoder=False).state_keys()
    assert {k.split(".")[0] for k in keys} == {"bert", "bert_encoder", "predictor", "text_encoder"}
    for key in (
        "bert.embeddings.token_type_embeddings.weight",
        "bert.encoder.albert_layer_groups.0.albert_layers.0.attention.query.weight",
        "predictor.text_encoder.lstms.0.weight_ih_l0_reverse",
        "predictor.text_encoder.lstms.5.fc.bias",
        "predictor.duration_proj.linear_layer.weight",
        "predictor.F0.1.pool.weight",
        "predictor.N.1.conv1x1.weight",
        "text_encoder.cnn.2.1.gamma",
        "text_encoder.lstm.bias_hh_l0",
    ):
        assert key in keys
    assert not [k for k in keys if "pooler" in k or k.endswith(".norm.weight") or "position_ids" in k]
    assert len(keys) == 152


def test_load_state_converts_conv_layouts() -> None:
    model = KokoroModel(TINY, with_decoder=False)
    state = ref.random_canonical_state(model, seed=1)
    model.load_state(state)
    conv = state["text_encoder.cnn.0.0.weight"]  # (out, in, k)
    np.testing.assert_array_equal(np.array(model.text_encoder.cnn[0][0].weight), conv.transpose(0, 2, 1))
    pool = state["predictor.F0.1.pool.weight"]  # (C, 1, 3)
    assert pool.shape == (TINY.hidden_dim, 1, 3)
    np.testing.assert_array_equal(np.array(model.predictor.F0[1].pool.weight), pool.transpose(0, 2, 1))


def test_load_state_names_every_missing_unexpected_and_misshapen_key() -> None:
    model = KokoroModel(TINY, with_decoder=False)
    state = ref.random_canonical_state(model, seed=1)
    del state["predictor.lstm.bias_hh_l0"]
    del state["bert.embeddings.token_type_embeddings.weight"]
    state["bert.pooler.weight"] = np.zeros((8, 8), np.float32)
    state["predictor.F0.0.norm1.norm.weight"] = np.ones(8, np.float32)
    state["bert_encoder.weight"] = np.zeros((8, 9), np.float32)
    before = np.array(model.bert_encoder.bias)
    with pytest.raises(KokoroStateMismatch) as info:
        model.load_state(state)
    err = info.value
    assert isinstance(err, WeightsMismatch)
    assert err.missing == ["bert.embeddings.token_type_embeddings.weight", "predictor.lstm.bias_hh_l0"]
    assert err.unexpected == ["bert.pooler.weight", "predictor.F0.0.norm1.norm.weight"]
    assert len(err.shape_errors) == 1 and err.shape_errors[0].startswith("bert_encoder.weight")
    np.testing.assert_array_equal(np.array(model.bert_encoder.bias), before)  # nothing half-loaded


def test_load_state_accepts_float64_and_stores_float32() -> None:
    model = KokoroModel(TINY, with_decoder=False)
    state = {k: v.astype(np.float64) for k, v in ref.random_canonical_state(model, seed=2).items()}
    model.load_state(state)
    assert model.bert_encoder.weight.dtype == mx.float32


def test_real_state_loads_strictly_into_the_full_model(kokoro_dir: Path) -> None:
    config = KokoroConfig.from_dict(json.loads((kokoro_dir / "config.json").read_text()))
    state = read_safetensors(kokoro_dir / "model.safetensors")
    model = KokoroModel(config)
    assert model.state_keys() == sorted(state)
    model.load_state(state)
    conv = state["text_encoder.cnn.0.0.weight"]
    np.testing.assert_array_equal(np.array(model.text_encoder.cnn[0][0].weight), conv.transpose(0, 2, 1))
