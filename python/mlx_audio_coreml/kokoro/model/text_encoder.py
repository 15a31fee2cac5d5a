"""Kokoro's acoustic text encoder (hexgrad's `TextEncoder`): embedding, CNN blocks, bidirectional LSTM.

Channels last throughout: token ids `(B, T)` -> `(B, T, channels)`. Each CNN block is hexgrad's
`Sequential(conv, LayerNorm, LeakyReLU(0.2), Dropout)`: only indices 0 (conv) and 1 (the
LayerNorm, with parameters named `gamma` and `beta`) hold weights, so a block is a list of those
two and the keys read `cnn.{i}.0.weight`, `cnn.{i}.1.gamma`. Inputs are unpadded, so the
padding masks hexgrad applies between blocks are all false and omitted.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

from .lstm import BiLSTM

_LEAKY_SLOPE = 0.2


class LayerNorm(nn.Module):
    """StyleTTS2's channel LayerNorm (`gamma`, `beta`, eps 1e-5) over the last axis."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.gamma = mx.ones((channels,))
        self.beta = mx.zeros((channels,))

    def __call__(self, x: mx.array) -> mx.array:
        return mx.fast.layer_norm(x, self.gamma, self.beta, self.eps)


class TextEncoder(nn.Module):
    def __init__(self, channels: int, kernel_size: int, depth: int, n_symbols: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(n_symbols, channels)
        padding = (kernel_size - 1) // 2
        self.cnn = [
            [nn.Conv1d(channels, channels, kernel_size, padding=padding), LayerNorm(channels)] for _ in range(depth)
        ]
        self.lstm = BiLSTM(channels, channels // 2)

    def __call__(self, input_ids: mx.array) -> mx.array:
        x = self.embedding(input_ids)  # (B, T, C)
        for conv, norm in self.cnn:
            x = nn.leaky_relu(norm(conv(x)), _LEAKY_SLOPE)
        return self.lstm(x)
