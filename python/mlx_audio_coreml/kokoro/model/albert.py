"""Kokoro's phoneme-level ALBERT (hexgrad's `CustomAlbert`, transformers' `AlbertModel`) at inference.

ALBERT factorizes its embedding (128 wide, mapped up to the 768-wide hidden state) and applies
one shared transformer layer `num_hidden_layers` times. Names follow transformers
(`embeddings.word_embeddings`, `encoder.embedding_hidden_mapping_in`,
`encoder.albert_layer_groups.0.albert_layers.0.attention.query`, ...), so `bert.*` keys load one
to one. The pooler is left out: `CustomAlbert` returns only the last hidden state. Inputs are
unpadded (batch 1, or rows of equal length), so there is no attention mask; token type is 0.
"""

from __future__ import annotations

import math

import mlx.core as mx
import mlx.nn as nn

from ..config import PLBertConfig
from . import host_albert, host_conv


def gelu_new(x: mx.array) -> mx.array:
    """transformers' `gelu_new` (ALBERT's default activation): the tanh approximation of GELU."""
    return 0.5 * x * (1 + mx.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


class AlbertEmbeddings(nn.Module):
    def __init__(self, cfg: PLBertConfig, vocab_size: int) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab_size, cfg.embedding_size)
        self.position_embeddings = nn.Embedding(cfg.max_position_embeddings, cfg.embedding_size)
        self.token_type_embeddings = nn.Embedding(cfg.type_vocab_size, cfg.embedding_size)
        self.LayerNorm = nn.LayerNorm(cfg.embedding_size, eps=cfg.layer_norm_eps)

    def __call__(self, input_ids: mx.array) -> mx.array:
        positions = mx.arange(input_ids.shape[1])
        x = self.word_embeddings(input_ids) + self.position_embeddings(positions)
        x = x + self.token_type_embeddings.weight[0]  # every token is of type 0
        return self.LayerNorm(x)


class AlbertAttention(nn.Module):
    def __init__(self, cfg: PLBertConfig) -> None:
        super().__init__()
        d = cfg.hidden_size
        self.num_heads = cfg.num_attention_heads
        self.query = nn.Linear(d, d)
        self.key = nn.Linear(d, d)
        self.value = nn.Linear(d, d)
        self.dense = nn.Linear(d, d)
        self.LayerNorm = nn.LayerNorm(d, eps=cfg.layer_norm_eps)

    def _heads(self, x: mx.array) -> mx.array:
        b, t, d = x.shape
        return x.reshape(b, t, self.num_heads, d // self.num_heads).transpose(0, 2, 1, 3)  # (B, H, T, Dh)

    def __call__(self, x: mx.array) -> mx.array:
        q, k, v = self._heads(self.query(x)), self._heads(self.key(x)), self._heads(self.value(x))
        scale = 1 / math.sqrt(q.shape[-1])
        ctx = mx.fast.scaled_dot_product_attention(q, k, v, scale=scale)
        ctx = ctx.transpose(0, 2, 1, 3).reshape(x.shape)  # (B, T, D)
        return self.LayerNorm(x + self.dense(ctx))


class AlbertLayer(nn.Module):
    """Post-norm transformer layer: attention (+ residual, norm), then gelu_new FFN (+ residual, norm)."""

    def __init__(self, cfg: PLBertConfig) -> None:
        super().__init__()
        self.attention = AlbertAttention(cfg)
        self.ffn = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.ffn_output = nn.Linear(cfg.intermediate_size, cfg.hidden_size)
        self.full_layer_layer_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def __call__(self, x: mx.array) -> mx.array:
        x = self.attention(x)
        return self.full_layer_layer_norm(x + self.ffn_output(gelu_new(self.ffn(x))))


class AlbertLayerGroup(nn.Module):
    def __init__(self, cfg: PLBertConfig) -> None:
        super().__init__()
        self.albert_layers = [AlbertLayer(cfg)]  # inner_group_num = 1


class AlbertTransformer(nn.Module):
    def __init__(self, cfg: PLBertConfig) -> None:
        super().__init__()
        self.num_hidden_layers = cfg.num_hidden_layers
        self.embedding_hidden_mapping_in = nn.Linear(cfg.embedding_size, cfg.hidden_size)
        self.albert_layer_groups = [AlbertLayerGroup(cfg)]  # num_hidden_groups = 1: one shared layer

    def __call__(self, x: mx.array) -> mx.array:
        x = self.embedding_hidden_mapping_in(x)
        layer = self.albert_layer_groups[0].albert_layers[0]
        for _ in range(self.num_hidden_layers):
            x = layer(x)
        return x


class CustomAlbert(nn.Module):
    """`(B, T)` token ids -> `(B, T, hidden_size)` last hidden state."""

    def __init__(self, cfg: PLBertConfig, vocab_size: int) -> None:
        super().__init__()
        self.embeddings = AlbertEmbeddings(cfg, vocab_size)
        self.encoder = AlbertTransformer(cfg)

    def __call__(self, input_ids: mx.array) -> mx.array:
        if host_conv.applies(self.embeddings.word_embeddings.weight.dtype):  # MLX on the CPU: host_albert.py
            return host_albert.run(self, input_ids)
        return self.encoder(self.embeddings(input_ids))
