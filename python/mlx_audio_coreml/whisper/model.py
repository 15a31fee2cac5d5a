"""The Whisper network in MLX: a dimensions dataclass, the audio encoder and the text decoder.

Parameter names follow openai-whisper and mlx-examples' `mlx_whisper` (encoder.blocks.0.attn.query
...), so MLX-format weights load without renaming. The decoder's KV cache is a returned value: a
list with one entry per layer, `((self_k, self_v), (cross_k_t, cross_v))`, batch on axis 0 of
every array. self_k, self_v and cross_v are (B, H, T, Dh); cross_k_t is stored transposed,
(B, H, Dh, n_ctx), so each step multiplies by it without a transpose. After a CPU host step,
self_k and self_v are `host_cache.HostKV` (the same shape, kept in a host buffer that grows in place).
Use `kv_cache_length` and `reorder_kv_cache` rather than these details. On the CPU in float32, the softmax and GELU of the
encoder and the logits product go through `host_math` (numpy), several times faster there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from ..cpu import host_math
from ..errors import ShapeConversionFailed
from . import gpu_encoder, host_cache, host_decoder, host_encoder, host_prefill

LayerCache = tuple[tuple[mx.array, mx.array] | None, tuple[mx.array, mx.array] | None]
KVCache = list[LayerCache]


@dataclass(frozen=True)
class ModelDimensions:
    n_mels: int  # mel bins of the input: 80, or 128 for large-v3
    n_audio_ctx: int  # encoder positions: 1500 per 30 s window
    n_audio_state: int  # encoder width
    n_audio_head: int
    n_audio_layer: int
    n_vocab: int  # 51864 English-only, 51865 multilingual, 51866 large-v3
    n_text_ctx: int  # decoder positions: 448
    n_text_state: int  # decoder width
    n_text_head: int
    n_text_layer: int


def sinusoids(length: int, channels: int, max_timescale: float = 10000.0) -> mx.array:
    """Whisper's fixed encoder positions: sines then cosines over geometric timescales (length, channels)."""
    half = channels // 2
    log_increment = math.log(max_timescale) / (half - 1)
    inv_timescales = np.exp(-log_increment * np.arange(half, dtype=np.float64))
    angles = np.arange(length, dtype=np.float64)[:, None] * inv_timescales[None, :]
    return mx.array(np.concatenate([np.sin(angles), np.cos(angles)], axis=1).astype(np.float32))


class MultiHeadAttention(nn.Module):
    def __init__(self, n_state: int, n_head: int) -> None:
        super().__init__()
        self.n_head = n_head
        self.query = nn.Linear(n_state, n_state)
        self.key = nn.Linear(n_state, n_state, bias=False)  # a key bias shifts each score row evenly: no effect
        self.value = nn.Linear(n_state, n_state)
        self.out = nn.Linear(n_state, n_state)

    def _heads(self, x: mx.array) -> mx.array:
        batch, length, width = x.shape
        return x.reshape(batch, length, self.n_head, width // self.n_head).transpose(0, 2, 1, 3)  # (B, H, T, Dh)

    def _merge(self, y: mx.array) -> mx.array:
        batch, _, length, head_dim = y.shape
        return self.out(y.transpose(0, 2, 1, 3).reshape(batch, length, self.n_head * head_dim))  # (B, T, D)

    def self_attend(
        self, x: mx.array, mask: mx.array | None, cache: tuple[mx.array, mx.array] | None
    ) -> tuple[mx.array, tuple[mx.array, mx.array]]:
        """Decoder self-attention; `cache` holds the keys and values of earlier tokens."""
        q, k, v = self._heads(self.query(x)), self._heads(self.key(x)), self._heads(self.value(x))
        if cache is not None:
            k = mx.concatenate([cache[0], k], axis=2)
            v = mx.concatenate([cache[1], v], axis=2)
        y = mx.fast.scaled_dot_product_attention(q, k, v, scale=q.shape[-1] ** -0.5, mask=mask)
        return self._merge(y), (k, v)

    def encode_attend(self, x: mx.array, on_host: bool) -> mx.array:
        """Encoder self-attention over all positions (no mask, no cache)."""
        if on_host:  # BLAS multiplies plain row-major blocks fastest: lay q, k^T and v out so
            batch, length, width = x.shape
            heads = self.n_head
            split = (batch, length, heads, width // heads)
            scaled_q = self.query(x) * (width // heads) ** -0.5  # scaling q: 1/T of the work of scaling scores
            q = mx.contiguous(scaled_q.reshape(split).transpose(0, 2, 1, 3))  # (B, H, T, Dh)
            k_t = mx.contiguous(self.key(x).reshape(split).transpose(0, 2, 3, 1))  # (B, H, Dh, T)
            v = mx.contiguous(self.value(x).reshape(split).transpose(0, 2, 1, 3))  # (B, H, T, Dh)
            return self.out(host_math.attention(q, k_t, v))
        q, k, v = self._heads(self.query(x)), self._heads(self.key(x)), self._heads(self.value(x))
        return self._merge(mx.fast.scaled_dot_product_attention(q, k, v, scale=q.shape[-1] ** -0.5))

    def cross_attend(
        self, x: mx.array, xa: mx.array, cache: tuple[mx.array, mx.array] | None
    ) -> tuple[mx.array, tuple[mx.array, mx.array], mx.array]:
        """Attention to the audio features; returns (output, (k_t, v), pre-softmax scores (B, H, T, n_ctx))."""
        q = self._heads(self.query(x))
        if cache is None:
            k_t = mx.contiguous(self._heads(self.key(xa)).swapaxes(-1, -2))  # (B, H, Dh, n_ctx)
            cache = (k_t, mx.contiguous(self._heads(self.value(xa))))  # (B, H, n_ctx, Dh), one block per head
        scores = (q * q.shape[-1] ** -0.5) @ cache[0]  # (B, H, T, n_ctx), also the word-timing scores
        weights = mx.softmax(scores.astype(mx.float32), axis=-1).astype(q.dtype)
        return self._merge(weights @ cache[1]), cache, scores.astype(mx.float32)


class ResidualAttentionBlock(nn.Module):
    def __init__(self, n_state: int, n_head: int, cross_attention: bool = False) -> None:
        super().__init__()
        self.attn = MultiHeadAttention(n_state, n_head)
        self.attn_ln = nn.LayerNorm(n_state)
        if cross_attention:
            self.cross_attn = MultiHeadAttention(n_state, n_head)
            self.cross_attn_ln = nn.LayerNorm(n_state)
        self.mlp1 = nn.Linear(n_state, 4 * n_state)
        self.mlp2 = nn.Linear(4 * n_state, n_state)
        self.mlp_ln = nn.LayerNorm(n_state)

    def _mlp(self, x: mx.array, on_host: bool = False) -> mx.array:
        if not on_host:
            return self.mlp2(nn.gelu(self.mlp1(self.mlp_ln(x))))
        # On the host path, a few hundred positions at a time: the (rows, 4 D) hidden block stays in
        # cache through GELU and the second product (~20% faster than whole, measured here).
        normed = self.mlp_ln(x)
        rows = host_math.ROWS_PER_BLOCK
        blocks = []
        for start in range(0, x.shape[1], rows):
            blocks.append(self.mlp2(host_math.gelu_(self.mlp1(normed[:, start : start + rows]))))
            mx.eval(blocks[-1])  # while its hidden block is still in cache
        return mx.concatenate(blocks, axis=1)

    def encode(self, x: mx.array, on_host: bool = False) -> mx.array:
        x = x + self.attn.encode_attend(self.attn_ln(x), on_host)
        return x + self._mlp(x, on_host)

    def decode(
        self, x: mx.array, xa: mx.array, mask: mx.array | None, cache: LayerCache | None
    ) -> tuple[mx.array, LayerCache, mx.array]:
        self_cache, cross_cache = cache if cache is not None else (None, None)
        y, self_cache = self.attn.self_attend(self.attn_ln(x), mask, self_cache)
        x = x + y
        y, cross_cache, qk = self.cross_attn.cross_attend(self.cross_attn_ln(x), xa, cross_cache)
        x = x + y
        return x + self._mlp(x), (self_cache, cross_cache), qk


class WhisperEncoder(nn.Module):
    """mel (B, n_frames, n_mels), channels-last -> audio features (B, n_frames // 2, n_state)."""

    def __init__(self, n_mels: int, n_ctx: int, n_state: int, n_head: int, n_layer: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(n_mels, n_state, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(n_state, n_state, kernel_size=3, stride=2, padding=1)
        self.host_int8 = False  # set by quantize.use_host_int8: oneDNN int8 products on the CPU
        self._positional_embedding = sinusoids(n_ctx, n_state)  # underscore: a buffer, not a weight
        self.blocks = [ResidualAttentionBlock(n_state, n_head) for _ in range(n_layer)]
        self.ln_post = nn.LayerNorm(n_state)

    def set_positional_embedding(self, table: mx.array) -> None:
        """Use a stored table (CTranslate2 ships one) instead of the computed sinusoids."""
        if table.shape != self._positional_embedding.shape:
            raise ShapeConversionFailed(self._positional_embedding.shape, table.shape, "encoder positions")
        self._positional_embedding = table.astype(self.conv1.weight.dtype)

    def __call__(self, mel: mx.array) -> mx.array:
        n_ctx = self._positional_embedding.shape[0]
        if mel.ndim != 3 or mel.shape[2] != self.conv1.weight.shape[2] or mel.shape[1] > 2 * n_ctx:
            raise ShapeConversionFailed([1, 2 * n_ctx, self.conv1.weight.shape[2]], mel.shape, "mel (B, frames, mels)")
        if (fast := gpu_encoder.prepared(self)) is not None:  # a CUDA GPU: fused, compiled layout (gpu_encoder.py)
            return fast(mel)
        on_host = host_math.available(self.conv1.weight.dtype)
        gelu = host_math.gelu_ if on_host else nn.gelu
        x = gelu(self.conv1(mel.astype(self.conv1.weight.dtype)))
        x = gelu(self.conv2(x))  # (B, n_frames // 2, n_state)
        x = x + self._positional_embedding[: x.shape[1]]
        if on_host and host_encoder.applies(self):
            return host_encoder.encode_blocks(self, x, int8=self.host_int8)
        for block in self.blocks:
            x = block.encode(x, on_host)
        return self.ln_post(x)


class TextDecoder(nn.Module):
    """tokens (B, T) + audio features -> logits (B, T, n_vocab), KV cache, cross-attention scores."""

    def __init__(self, n_vocab: int, n_ctx: int, n_state: int, n_head: int, n_layer: int) -> None:
        super().__init__()
        self.token_embedding = nn.Embedding(n_vocab, n_state)
        self.positional_embedding = mx.zeros((n_ctx, n_state))
        self.host_int8 = False  # set by quantize.use_host_int8: oneDNN int8 products on the CPU
        self.host_weights: host_decoder.PreparedDecoder | None = None  # built on the first host step
        self.blocks = [ResidualAttentionBlock(n_state, n_head, cross_attention=True) for _ in range(n_layer)]
        self.ln = nn.LayerNorm(n_state)

    def __call__(
        self,
        tokens: mx.array,
        audio_features: mx.array,
        kv_cache: KVCache | None = None,
        scores: bool = True,
        host_logits: bool = False,
    ) -> tuple[Any, KVCache, list[mx.array]]:
        """`scores=False`: the caller drops the cross-attention scores (the decoding loop): a host
        step then returns none instead of building them (~0.1 ms of a ~6 ms step). `host_logits`:
        a host step returns its logits as the numpy (B, V) block it made, not as MLX (B, 1, V)
        (`sampling.DecoderStep.host_call`); other routes still return MLX arrays."""
        offset = kv_cache_length(kv_cache)
        length = tokens.shape[-1]
        self._check_context(tokens, offset)
        if host_decoder.applies(self, tokens, kv_cache):
            return host_decoder.decode_step(self, tokens, kv_cache, offset, scores, host_logits)
        if host_prefill.applies(self, tokens, kv_cache, audio_features):
            return host_prefill.prefill(self, tokens, audio_features)
        kv_cache = host_cache.to_mlx(kv_cache)  # keys/values the host steps kept, for the MLX ops
        x = self.token_embedding(tokens) + self.positional_embedding[offset : offset + length]
        xa = audio_features.astype(x.dtype)
        mask = _causal_mask(length, offset, x.dtype) if length > 1 else None
        new_cache: KVCache = []
        cross_qk: list[mx.array] = []
        for i, block in enumerate(self.blocks):
            x, layer_cache, qk = block.decode(x, xa, mask, kv_cache[i] if kv_cache else None)
            new_cache.append(layer_cache)
            cross_qk.append(qk)
        return self._logits(self.ln(x)), new_cache, cross_qk

    def prompt_cache(self, tokens: mx.array, audio_features: mx.array) -> KVCache:
        """The cache of a first call whose logits and scores the caller drops (a previous-text
        prompt): the same values as `self(tokens, audio_features)[1]`. The CPU host path then skips
        the last block's outputs past its keys and values, and the logits (host_prefill.prompt_cache);
        MLX, lazy, never computes them anyway."""
        if host_prefill.applies(self, tokens, None, audio_features):
            self._check_context(tokens, 0)  # as __call__ checks on its own route
            return host_prefill.prompt_cache(self, tokens, audio_features)
        return self(tokens, audio_features)[1]

    def _check_context(self, tokens: mx.array, offset: int) -> None:
        if offset + tokens.shape[-1] > self.positional_embedding.shape[0]:
            raise ShapeConversionFailed(
                [tokens.shape[0], self.positional_embedding.shape[0]],
                [tokens.shape[0], offset + tokens.shape[-1]],
                "decoder context",
            )

    def _logits(self, x: mx.array) -> mx.array:
        """x @ embedding.T: the output projection is the token embedding."""
        one_row = x.shape[0] * x.shape[1] == 1  # a greedy step; beams and prompts use MLX's gemm
        if one_row and isinstance(self.token_embedding, nn.Embedding) and host_math.available(x.dtype):
            with host_math.decoder_blas_threads():  # the whole step evaluates in here
                return host_math.matvec_logits(self.token_embedding.weight, x)
        return self.token_embedding.as_linear(x).astype(mx.float32)


def kv_cache_length(kv_cache: KVCache | None) -> int:
    """How many tokens the cache already holds (0 for None)."""
    if not kv_cache or kv_cache[0][0] is None:
        return 0
    return kv_cache[0][0][0].shape[2]


def reorder_kv_cache(
    kv_cache: KVCache, indices: mx.array, *, same_audio_rows: bool = False, in_place: bool = False
) -> KVCache:
    """The cache with its batch rows taken in `indices` order (beam search keeps the best beams).

    `same_audio_rows`: every row comes from a row holding the same audio (beam search: a beam's
    source is a beam of its own window), so the audio keys/values are kept as they are. Gathering
    them anyway (5 beams x 4 layers x 2.3 MB for tiny.en, every step) cost ~30 ms per step here.
    `in_place`: the CPU host decoder's keys/values (`HostKV`) are moved where they lie, copying only
    rows whose source differs (`HostKV.moved`); the cache passed in is used up (reading it again
    raises `StaleCache`). Other arrays are gathered as without it."""
    rows = np.asarray(indices).reshape(-1).tolist() if in_place else None

    def one(kv: Any) -> Any:
        return kv.moved(rows) if rows is not None and isinstance(kv, host_cache.HostKV) else kv[indices]

    def take(pair: tuple[mx.array, mx.array] | None) -> tuple[mx.array, mx.array] | None:
        return None if pair is None else (one(pair[0]), one(pair[1]))

    return [(take(self_kv), cross_kv if same_audio_rows else take(cross_kv)) for self_kv, cross_kv in kv_cache]


def _causal_mask(length: int, offset: int, dtype: mx.Dtype) -> mx.array:
    """Additive mask (T, offset + T): query i sees keys up to offset + i."""
    rows = mx.arange(length)[:, None] + offset
    cols = mx.arange(offset + length)[None, :]
    return mx.where(cols > rows, mx.array(-mx.inf, dtype), mx.array(0, dtype))


class Whisper(nn.Module):
    def __init__(self, dims: ModelDimensions, dtype: mx.Dtype = mx.float32) -> None:
        super().__init__()
        self.dims = dims
        self.host_int8 = False  # set by quantize.use_host_int8 (with the encoder's and decoder's)
        self.encoder = WhisperEncoder(
            dims.n_mels, dims.n_audio_ctx, dims.n_audio_state, dims.n_audio_head, dims.n_audio_layer
        )
        self.decoder = TextDecoder(
            dims.n_vocab, dims.n_text_ctx, dims.n_text_state, dims.n_text_head, dims.n_text_layer
        )
        self.set_dtype(dtype)
        self.encoder._positional_embedding = self.encoder._positional_embedding.astype(dtype)
        # Default alignment heads: every head of the last half of the decoder (openai-whisper's default).
        first = dims.n_text_layer // 2
        self.set_alignment_heads(
            [(layer, head) for layer in range(first, dims.n_text_layer) for head in range(dims.n_text_head)]
        )

    @property
    def dtype(self) -> mx.Dtype:
        return self.encoder.conv1.weight.dtype

    @property
    def alignment_heads(self) -> mx.array:
        """(K, 2) int32 array of (decoder layer, head) pairs whose cross-attention tracks time."""
        return self._alignment_heads

    def set_alignment_heads(self, heads: Any) -> None:
        table = np.asarray(heads, dtype=np.int32).reshape(-1, 2)
        if table.size and (table[:, 0].max() >= self.dims.n_text_layer or table[:, 1].max() >= self.dims.n_text_head):
            raise ValueError(
                f"alignment heads {table.tolist()} outside {self.dims.n_text_layer} layers x {self.dims.n_text_head} heads"
            )
        self._alignment_heads = mx.array(table)

    @property
    def is_multilingual(self) -> bool:
        return self.dims.n_vocab >= 51865

    @property
    def num_languages(self) -> int:
        return self.dims.n_vocab - 51765 - int(self.is_multilingual)

    def embed_audio(self, mel: mx.array) -> mx.array:
        """mel (B, n_frames, n_mels) -> audio features (B, n_audio_ctx, n_audio_state)."""
        return self.encoder(mel)

    def logits(self, tokens: mx.array, audio_features: mx.array) -> mx.array:
        return self.decoder(tokens, audio_features)[0]

    def __call__(self, mel: mx.array, tokens: mx.array) -> mx.array:
        return self.decoder(tokens, self.encoder(mel))[0]
