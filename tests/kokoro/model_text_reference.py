"""Plain numpy references for Kokoro's text side, written from PyTorch's documented semantics.

Everything here works on canonical (PyTorch-layout) weights and hexgrad's channels-first tensors
`(C, T)` for one utterance, so a test that loads the same state into the MLX model checks the layout
conversion as well as the arithmetic. `random_canonical_state` draws a state for any model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import mlx.nn as nn
import numpy as np
from mlx.utils import tree_flatten

from mlx_audio_coreml.kokoro.model.adain import DepthwiseConvTranspose1d
from mlx_audio_coreml.kokoro.model.state import _owner

State = Mapping[str, np.ndarray]


def random_canonical_state(model: nn.Module, seed: int = 0, scale: float = 0.5) -> dict[str, np.ndarray]:
    """A random state in PyTorch layouts for every parameter of `model` (MLX layouts inverted)."""
    rng = np.random.default_rng(seed)
    state = {}
    for key, value in tree_flatten(model.parameters()):
        module, name = _owner(model, key)
        arr = (rng.standard_normal(value.shape) * scale).astype(np.float32)
        if name == "weight" and isinstance(module, (nn.Conv1d, DepthwiseConvTranspose1d)):
            arr = arr.transpose(0, 2, 1)  # MLX (out, k, in) -> PyTorch (out, in, k); pool (C, 3, 1) -> (C, 1, 3)
        state[key] = np.ascontiguousarray(arr)
    return state


def sub(state: State, prefix: str) -> dict[str, np.ndarray]:
    """The entries under `prefix.`, with the prefix removed."""
    return {k[len(prefix) + 1 :]: v for k, v in state.items() if k.startswith(prefix + ".")}


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def lstm_direction(x: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray, b_ih: np.ndarray, b_hh: np.ndarray) -> np.ndarray:
    """torch.nn.LSTM's equations, one direction: x (T, I) -> h (T, H); gates (i, f, g, o) along 4H."""
    hidden = w_hh.shape[1]
    h = np.zeros(hidden, np.float64)
    c = np.zeros(hidden, np.float64)
    out = []
    for x_t in x.astype(np.float64):
        z = w_ih @ x_t + b_ih + w_hh @ h + b_hh
        i, f, g, o = (
            sigmoid(z[:hidden]),
            sigmoid(z[hidden : 2 * hidden]),
            np.tanh(z[2 * hidden : 3 * hidden]),
            sigmoid(z[3 * hidden :]),
        )
        c = f * c + i * g
        h = o * np.tanh(c)
        out.append(h)
    return np.stack(out)


def bilstm(x: np.ndarray, p: State) -> np.ndarray:
    """Bidirectional, batch_first, one layer, no padding: x (T, I) -> (T, 2H)."""
    fwd = lstm_direction(x, p["weight_ih_l0"], p["weight_hh_l0"], p["bias_ih_l0"], p["bias_hh_l0"])
    bwd = lstm_direction(
        x[::-1], p["weight_ih_l0_reverse"], p["weight_hh_l0_reverse"], p["bias_ih_l0_reverse"], p["bias_hh_l0_reverse"]
    )
    return np.concatenate([fwd, bwd[::-1]], axis=-1)


def linear(x: np.ndarray, p: State) -> np.ndarray:
    return x @ p["weight"].T + p["bias"]


def conv1d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, padding: int) -> np.ndarray:
    """torch Conv1d, stride 1, groups 1: x (C_in, T), weight (C_out, C_in, K) -> (C_out, T + 2p - K + 1)."""
    k = weight.shape[2]
    xp = np.pad(x, ((0, 0), (padding, padding)))
    steps = xp.shape[1] - k + 1
    y = np.stack([np.einsum("oik,ik->o", weight, xp[:, t : t + k]) for t in range(steps)], axis=1)
    return y if bias is None else y + bias[:, None]


def depthwise_conv_transpose1d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """torch ConvTranspose1d(C, C, 3, stride=2, padding=1, output_padding=1, groups=C) by its definition:
    input frame t adds weight[c, 0, j] * x[c, t] at full position 2t + j; padding crops 1 at the start."""
    channels, steps = x.shape
    k = weight.shape[2]
    full = np.zeros((channels, (steps - 1) * 2 + k + 1))  # + output_padding
    for t in range(steps):
        for j in range(k):
            full[:, 2 * t + j] += weight[:, 0, j] * x[:, t]
    return full[:, 1 : 1 + 2 * steps] + bias[:, None]


def layer_norm(
    x: np.ndarray, eps: float, weight: np.ndarray | None = None, bias: np.ndarray | None = None
) -> np.ndarray:
    """Over the last axis."""
    y = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + eps)
    return y if weight is None else y * weight + bias


def leaky_relu(x: np.ndarray) -> np.ndarray:
    return np.where(x >= 0, x, 0.2 * x)


def ada_layer_norm(x: np.ndarray, s: np.ndarray, p: State) -> np.ndarray:
    """hexgrad's AdaLayerNorm on x (T, C), style s (S,)."""
    gamma, beta = np.split(linear(s, sub(p, "fc")), 2)
    return (1 + gamma) * layer_norm(x, 1e-5) + beta


def adain1d(x: np.ndarray, s: np.ndarray, p: State) -> np.ndarray:
    """hexgrad's AdaIN1d on x (C, T): instance norm over time (no affine), style scale and shift."""
    gamma, beta = np.split(linear(s, sub(p, "fc")), 2)
    norm = (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + 1e-5)
    return (1 + gamma[:, None]) * norm + beta[:, None]


def adain_res_blk1d(x: np.ndarray, s: np.ndarray, p: State, upsample: bool) -> np.ndarray:
    """hexgrad's AdainResBlk1d on x (C_in, T) -> (C_out, T or 2T)."""
    r = leaky_relu(adain1d(x, s, sub(p, "norm1")))
    if upsample:
        r = depthwise_conv_transpose1d(r, p["pool.weight"], p["pool.bias"])
    r = conv1d(r, p["conv1.weight"], p["conv1.bias"], 1)
    r = leaky_relu(adain1d(r, s, sub(p, "norm2")))
    r = conv1d(r, p["conv2.weight"], p["conv2.bias"], 1)
    short = np.repeat(x, 2, axis=1) if upsample else x
    if "conv1x1.weight" in p:
        short = conv1d(short, p["conv1x1.weight"], None, 0)
    return (r + short) / math.sqrt(2)


def gelu_new(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def albert_layer(x: np.ndarray, p: State, heads: int, eps: float) -> np.ndarray:
    """transformers' AlbertLayer on x (T, D), no mask."""
    t, d = x.shape
    dh = d // heads
    q, k, v = (
        linear(x, sub(p, f"attention.{n}")).reshape(t, heads, dh).transpose(1, 0, 2) for n in ("query", "key", "value")
    )
    scores = q @ k.transpose(0, 2, 1) / math.sqrt(dh)
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    ctx = (probs @ v).transpose(1, 0, 2).reshape(t, d)
    a = layer_norm(
        x + linear(ctx, sub(p, "attention.dense")), eps, p["attention.LayerNorm.weight"], p["attention.LayerNorm.bias"]
    )
    f = linear(gelu_new(linear(a, sub(p, "ffn"))), sub(p, "ffn_output"))
    return layer_norm(a + f, eps, p["full_layer_layer_norm.weight"], p["full_layer_layer_norm.bias"])


def albert(ids: np.ndarray, p: State, heads: int, layers: int, eps: float) -> np.ndarray:
    """CustomAlbert's last hidden state for ids (T,), token type 0: (T, hidden)."""
    e = p["embeddings.word_embeddings.weight"][ids] + p["embeddings.position_embeddings.weight"][: len(ids)]
    e = e + p["embeddings.token_type_embeddings.weight"][0]
    x = layer_norm(e, eps, p["embeddings.LayerNorm.weight"], p["embeddings.LayerNorm.bias"])
    x = linear(x, sub(p, "encoder.embedding_hidden_mapping_in"))
    layer = sub(p, "encoder.albert_layer_groups.0.albert_layers.0")
    for _ in range(layers):
        x = albert_layer(x, layer, heads, eps)
    return x


def text_encoder(ids: np.ndarray, p: State, depth: int, kernel_size: int) -> np.ndarray:
    """hexgrad's TextEncoder, no padding: ids (T,) -> (C, T)."""
    x = p["embedding.weight"][ids].T  # (C, T)
    for i in range(depth):
        x = conv1d(x, p[f"cnn.{i}.0.weight"], p[f"cnn.{i}.0.bias"], (kernel_size - 1) // 2)
        x = leaky_relu(layer_norm(x.T, 1e-5, p[f"cnn.{i}.1.gamma"], p[f"cnn.{i}.1.beta"]).T)
    return bilstm(x.T, sub(p, "lstm")).T


def duration_encoder(x: np.ndarray, s: np.ndarray, p: State, nlayers: int) -> np.ndarray:
    """hexgrad's DurationEncoder, no padding: x (T, d_model) -> (T, d_model + style_dim)."""
    styles = np.broadcast_to(s, (x.shape[0], s.shape[0]))
    x = np.concatenate([x, styles], axis=-1)
    for i in range(nlayers):
        x = ada_layer_norm(bilstm(x, sub(p, f"lstms.{2 * i}")), s, sub(p, f"lstms.{2 * i + 1}"))
        x = np.concatenate([x, styles], axis=-1)
    return x


def f0_n(en: np.ndarray, s: np.ndarray, p: State) -> tuple[np.ndarray, np.ndarray]:
    """hexgrad's F0Ntrain: en (C, F) -> F0 (2F,), N (2F,)."""
    x = bilstm(en.T, sub(p, "shared")).T
    outs = []
    for branch in ("F0", "N"):
        y = x
        for i in range(3):
            y = adain_res_blk1d(y, s, sub(p, f"{branch}.{i}"), upsample=i == 1)
        outs.append(conv1d(y, p[f"{branch}_proj.weight"], p[f"{branch}_proj.bias"], 0)[0])
    return outs[0], outs[1]


def features(ids: np.ndarray, ref_s: np.ndarray, p: State, cfg, speed: float) -> dict[str, np.ndarray]:
    """hexgrad's forward_with_tokens up to the decoder, for ids (T,) and ref_s (256,): asr, f0, n, durations."""
    style_dim = cfg.style_dim
    s = ref_s[style_dim:]
    bert = albert(
        ids, sub(p, "bert"), cfg.plbert.num_attention_heads, cfg.plbert.num_hidden_layers, cfg.plbert.layer_norm_eps
    )
    d = duration_encoder(linear(bert, sub(p, "bert_encoder")), s, sub(p, "predictor.text_encoder"), cfg.n_layer)
    logits = linear(bilstm(d, sub(p, "predictor.lstm")), sub(p, "predictor.duration_proj.linear_layer"))
    durations = np.maximum(np.round(sigmoid(logits).sum(-1) / speed), 1).astype(np.int64)
    frames = np.repeat(np.arange(len(ids)), durations)
    aln = np.zeros((len(ids), len(frames)))
    aln[frames, np.arange(len(frames))] = 1
    f0, n = f0_n(d.T @ aln, s, sub(p, "predictor"))
    asr = text_encoder(ids, sub(p, "text_encoder"), cfg.n_layer, cfg.text_encoder_kernel_size) @ aln
    return {"asr": asr, "f0": f0, "n": n, "durations": durations, "duration_sums": sigmoid(logits).sum(-1) / speed}
