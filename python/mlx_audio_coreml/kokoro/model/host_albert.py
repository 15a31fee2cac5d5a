"""Kokoro's ALBERT on the CPU host path: the shared transformer layer on numpy rows with the project's host
kernels (cpu/linear.py products, cpu/attention.py heads, cpu/host_math.py layer norm).

Why: MLX on the CPU runs the tanh of `gelu_new` as a scalar loop and copies strided head slices before
each product; with queries, keys and values fused into one (T, 3D) product (queries pre-scaled by
1/sqrt(Dh)), per-head attention on oneDNN and numpy's vectorized tanh, the 12 passes of the layer
cost a fraction of that. Same arithmetic as albert.py (post-norm layer, tanh GELU, no mask).
"""

from __future__ import annotations

import math
from typing import Any

import mlx.core as mx
import numpy as np

from ...cpu import attention as host_attention
from ...cpu import host_math
from ...cpu import linear as host_linear
from .host_conv import prepared

_GELU_C = np.float32(math.sqrt(2 / math.pi))
_GELU_CUBIC = np.float32(0.044715)


def gelu_new_(x: np.ndarray) -> np.ndarray:
    """transformers' `gelu_new` (tanh approximation), in place; returns x."""
    inner = x * x
    inner *= _GELU_CUBIC
    inner += 1.0
    inner *= x
    inner *= _GELU_C
    np.tanh(inner, out=inner)
    inner += 1.0
    inner *= 0.5
    x *= inner
    return x


class HostAlbert:
    """A prepared CustomAlbert: token ids (T,) -> last hidden state (T, hidden)."""

    def __init__(self, bert: Any) -> None:
        embeddings, encoder = bert.embeddings, bert.encoder
        self.words = np.asarray(embeddings.word_embeddings.weight, np.float32)
        type_row = np.asarray(embeddings.token_type_embeddings.weight, np.float32)[0]  # every token is of type 0
        self.positions = np.asarray(embeddings.position_embeddings.weight, np.float32) + type_row
        self.embedding_norm = host_math.norm_params(embeddings.LayerNorm)
        self.mapping = host_linear.from_layer(encoder.embedding_hidden_mapping_in, int8=False)
        self.layers = encoder.num_hidden_layers
        layer = encoder.albert_layer_groups[0].albert_layers[0]
        attention = layer.attention
        self.heads = attention.num_heads
        head_dim = attention.query.weight.shape[0] // self.heads
        self.qkv = host_linear.fused(
            [attention.query, attention.key, attention.value], False, scales=[head_dim**-0.5, 1.0, 1.0]
        )
        self.dense = host_linear.from_layer(attention.dense, int8=False)
        self.ffn = host_linear.from_layer(layer.ffn, int8=False)
        self.ffn_output = host_linear.from_layer(layer.ffn_output, int8=False)
        self.attention_norm = host_math.norm_params(attention.LayerNorm)
        self.output_norm = host_math.norm_params(layer.full_layer_layer_norm)

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        x = host_math.layer_norm(self.words[ids] + self.positions[: len(ids)], self.embedding_norm)
        x = self.mapping(x)
        for _ in range(self.layers):
            x = self._layer(x)
        return x

    def _layer(self, x: np.ndarray) -> np.ndarray:
        length, width = x.shape
        qkv = self.qkv(x)  # (T, 3D): q | k | v
        context = np.empty((length, width), np.float32)
        q, k, v = (host_attention.split_heads(qkv[:, i * width : (i + 1) * width], self.heads) for i in range(3))
        host_attention.attend(q, k, v, host_attention.split_heads(context, self.heads))  # (H, T, Dh) views
        x = host_math.layer_norm(x + self.dense(context), self.attention_norm)
        hidden = gelu_new_(self.ffn(x))
        return host_math.layer_norm(x + self.ffn_output(hidden), self.output_norm)


def run(bert: Any, input_ids: mx.array) -> mx.array:
    """CustomAlbert through the host path: (B, T) ids -> (B, T, hidden)."""
    sources = [bert.encoder.albert_layer_groups[0].albert_layers[0].ffn.weight, bert.embeddings.word_embeddings.weight]
    host = prepared(bert, HostAlbert, sources)
    ids = np.array(input_ids, np.int64)
    return mx.array(np.stack([host(row) for row in ids]))
