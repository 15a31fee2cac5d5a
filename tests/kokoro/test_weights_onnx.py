"""The int8 ONNX graph dequantized into the canonical state: keys, config, and values checked against
onnxruntime running the same graph (block inputs and outputs exposed as extra outputs)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from onnx_reference import OnnxReference

from mlx_audio_coreml.kokoro.weights.canonical import canonical_shapes, check_state
from mlx_audio_coreml.kokoro.weights.hexgrad_config import config_from_state
from mlx_audio_coreml.kokoro.weights.onnx_graph import module_path
from mlx_audio_coreml.kokoro.weights.safetensors_io import read_safetensors

# hexgrad/Kokoro-82M config.json, less its vocabulary
HEXGRAD_CONFIG = {
    k: v
    for k, v in json.loads((Path(__file__).with_name("hexgrad_config.json")).read_text(encoding="utf-8")).items()
    if k != "vocab"
}

TEXT = "/encoder/text_encoder"
ALBERT = "/encoder/bert/encoder/albert_layer_groups.0/albert_layers.0"
BLOCKS = {  # name: (input, output) of one block in the graph
    "embedding": ("tokens", f"{TEXT}/embedding/Gather_output_0"),
    "conv": (f"{TEXT}/Transpose_output_0", f"{TEXT}/cnn.0/cnn.0.0/Conv_output_0"),
    "lstm": (f"{TEXT}/lstm/Transpose_output_0", f"{TEXT}/lstm/LSTM_output_0"),
    "linear": (f"{ALBERT}/full_layer_layer_norm_11/LayerNormalization_output_0", "/encoder/bert_encoder/Add_output_0"),
}


@pytest.mark.parametrize(
    ("node", "path"),
    [
        ("/encoder/F0.1/conv1/Conv_quant", "predictor.F0.1.conv1"),
        ("/encoder/shared/LSTM_quant", "predictor.shared"),
        ("/encoder/text_encoder/cnn.2/cnn.2.0/Conv_quant", "text_encoder.cnn.2.0"),
        ("/decoder/decoder/asr_res/asr_res.0/Conv_quant", "decoder.asr_res.0"),
        (
            "/encoder/bert/encoder/albert_layer_groups.0/albert_layers.0/attention/query_7/MatMul_quant",
            "bert.encoder.albert_layer_groups.0.albert_layers.0.attention.query",
        ),
        ("/decoder/decoder/generator/ups.1/ConvTranspose", "decoder.generator.ups.1"),
    ],
)
def test_module_path_follows_the_exported_node_names(node: str, path: str) -> None:
    assert module_path(node) == path


def test_canonical_shapes_count_every_hexgrad_tensor() -> None:
    shapes = canonical_shapes(HEXGRAD_CONFIG)
    assert len(shapes) == 457
    assert shapes["decoder.generator.noise_convs.0.weight"] == (256, 22, 12)
    assert shapes["predictor.F0.1.pool.weight"] == (512, 1, 3)
    assert not any("pooler" in k or ".norm.weight" in k or "position_ids" in k for k in shapes)


def test_installed_state_is_complete_and_config_is_hexgrads(kokoro_dir: Path) -> None:
    state = read_safetensors(kokoro_dir / "model.safetensors")
    config = json.loads((kokoro_dir / "config.json").read_text(encoding="utf-8"))
    vocab = config.pop("vocab")
    assert config == HEXGRAD_CONFIG
    assert len(vocab) == 114 and vocab["ə"] == 83
    check_state(state, HEXGRAD_CONFIG)
    assert config_from_state(state, vocab)["hidden_dim"] == 512
    assert all(v.dtype == np.float32 and np.all(np.isfinite(v)) for v in state.values())


@pytest.fixture(scope="module")
def block_io(kokoro_dir: Path) -> dict[str, np.ndarray]:
    names = sorted({n for pair in BLOCKS.values() for n in pair if n != "tokens"})
    ref = OnnxReference(kokoro_dir / "kokoro-v1.0.int8.onnx", extra_outputs=names)
    tokens = [0, 50, 83, 54, 156, 57, 135, 16, 65, 102, 53, 0]
    style = np.load(kokoro_dir / "voices" / "jf_alpha.npy")[len(tokens) - 3]
    out = ref.run(tokens, style)
    return {"tokens": np.array(tokens), **out.extras}


@pytest.fixture(scope="module")
def state(kokoro_dir: Path) -> dict[str, np.ndarray]:
    return read_safetensors(kokoro_dir / "model.safetensors")


def _rel(ours: np.ndarray, ref: np.ndarray) -> float:
    return float(np.linalg.norm(ours - ref) / np.linalg.norm(ref))


def test_embedding_rows_equal_the_graphs_dequantized_gather(block_io: dict, state: dict) -> None:
    x, y = (block_io[n] for n in BLOCKS["embedding"])
    np.testing.assert_array_equal(state["text_encoder.embedding.weight"][x][None], y)


def test_conv_weight_reproduces_the_graphs_conv(block_io: dict, state: dict) -> None:
    x, y = (block_io[n] for n in BLOCKS["conv"])  # (1, C, T) -> (1, C, T), kernel 5, padding 2
    w, b = state["text_encoder.cnn.0.0.weight"], state["text_encoder.cnn.0.0.bias"]
    xp = np.pad(_dynamic_uint8(x)[0], ((0, 0), (2, 2)))
    ours = np.stack([np.einsum("oik,ik->o", w, xp[:, t : t + 5]) for t in range(x.shape[2])], axis=1) + b[:, None]
    assert _rel(ours[None], y) < 1e-4  # the graph's own activation rounding applied: equal up to float sums


def test_linear_weight_reproduces_the_graphs_matmul(block_io: dict, state: dict) -> None:
    x, y = (block_io[n] for n in BLOCKS["linear"])
    ours = _dynamic_uint8(x) @ state["bert_encoder.weight"].T + state["bert_encoder.bias"]
    assert _rel(ours, y) < 1e-4


def test_lstm_weights_reproduce_the_graphs_lstm_in_torch_gate_order(block_io: dict, state: dict) -> None:
    x, y = (block_io[n] for n in BLOCKS["lstm"])  # (T, 1, C) -> (T, 2, 1, H)
    forward = _lstm(x[:, 0], state, "text_encoder.lstm", "")
    backward = _lstm(x[::-1, 0], state, "text_encoder.lstm", "_reverse")[::-1]
    assert _rel(forward, y[:, 0, 0]) < 0.03
    assert _rel(backward, y[:, 1, 0]) < 0.03


def _lstm(x: np.ndarray, state: dict, prefix: str, suffix: str) -> np.ndarray:
    """PyTorch's LSTM recurrence with gates (i, f, g, o)."""
    w_ih, w_hh = state[f"{prefix}.weight_ih_l0{suffix}"], state[f"{prefix}.weight_hh_l0{suffix}"]
    bias = state[f"{prefix}.bias_ih_l0{suffix}"] + state[f"{prefix}.bias_hh_l0{suffix}"]
    hidden = w_hh.shape[1]
    h, c, out = np.zeros(hidden, np.float32), np.zeros(hidden, np.float32), []
    for step in x:
        i, f, g, o = np.split(w_ih @ step + w_hh @ h + bias, 4)
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        h = _sigmoid(o) * np.tanh(c)
        out.append(h)
    return np.stack(out)


def _dynamic_uint8(x: np.ndarray) -> np.ndarray:
    """ONNX DynamicQuantizeLinear then back: the rounding the graph applies to activations."""
    lo, hi = min(0.0, float(x.min())), max(0.0, float(x.max()))
    scale = np.float32((hi - lo) / 255)
    zero = np.clip(np.round(-lo / scale), 0, 255)
    q = np.clip(np.round(x / scale) + zero, 0, 255)
    return ((q - zero) * scale).astype(np.float32)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))
