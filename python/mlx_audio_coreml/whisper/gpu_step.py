"""A compiled text-decoder step with a preallocated (static) KV cache, for decoding on a GPU.

At batch 1 on a GPU the dynamic step (`sampling.DecoderStep`) is bound by launches and host work:
every step builds a fresh graph whose cache grows by a concatenation per layer, so MLX cannot reuse
a compiled graph. Here the self-attention keys and values live in arrays of the decoder's full
context (n_text_ctx positions, 448), the new token's keys and values are written in place at a
position held on the device, and positions not yet written are masked out, so every step has the
same shapes and one `mx.compile`d function serves the whole window. Fewer kernels per step, too:
one product for the self-attention's query, key and value, and the fused attention kernel for the
audio. The step computes the dynamic one's function (masked keys weigh exactly zero), equal up to
rounding, so greedy decoding picks the same tokens; `StaticDecoderStep` is a drop-in for `DecoderStep` in `sampling.sample_tokens` and
`BeamSearch` (it has `reorder`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import mlx.core as mx
import mlx.nn as nn

from ..errors import ShapeConversionFailed
from . import host_cache
from .model import KVCache, ResidualAttentionBlock, TextDecoder, reorder_kv_cache
from .sampling import DecoderStep

ENABLED = True  # the product's switch: False keeps the dynamic step everywhere
SELECT_WRITE_ROWS = 4  # up to this batch, a step's keys/values are written by a select (see _write)


@dataclass(frozen=True)
class StaticCache:
    """Per layer: self keys/values (B, H, capacity, Dh), audio keys and values (B, H, n_ctx, Dh)."""

    self_k: tuple[mx.array, ...]
    self_v: tuple[mx.array, ...]
    cross_k: tuple[mx.array, ...]
    cross_v: tuple[mx.array, ...]
    offset: mx.array  # int32 scalar on the device: where the next token's keys go
    length: int  # the same count on the host, to bound the context without a read-back

    def take(self, rows: mx.array) -> StaticCache:
        """The cache of batch rows `rows` (the audio keys/values kept: beams share their window)."""
        return StaticCache(
            tuple(k[rows] for k in self.self_k), tuple(v[rows] for v in self.self_v),
            self.cross_k, self.cross_v, self.offset, self.length,
        )  # fmt: skip


def applies() -> bool:
    """The static step is used on a GPU, where launches and graph building dominate a step."""
    return ENABLED and mx.default_device() != mx.cpu


def to_static(cache: KVCache, capacity: int) -> StaticCache:
    """A prefill's dynamic cache (`model.TextDecoder`'s layout) copied into arrays of `capacity` positions."""
    layers = host_cache.to_mlx(cache)
    length = layers[0][0][0].shape[2]
    if length > capacity:
        raise ShapeConversionFailed(
            [layers[0][0][0].shape[0], capacity], [layers[0][0][0].shape[0], length], "decoder context"
        )
    keys, values = [], []
    for (k, v), _ in layers:
        batch, heads, _, head_dim = k.shape
        empty = mx.zeros((batch, heads, capacity, head_dim), dtype=k.dtype)
        keys.append(mx.slice_update(empty, k, mx.array([0]), axes=(2,)))
        values.append(mx.slice_update(empty, v, mx.array([0]), axes=(2,)))
    cross = [c for _, c in layers]
    return StaticCache(
        tuple(keys), tuple(values), tuple(mx.contiguous(c[0].swapaxes(-1, -2)) for c in cross), tuple(c[1] for c in cross),
        mx.array(length, dtype=mx.int32), length,
    )  # fmt: skip


def fused_qkv(block: ResidualAttentionBlock) -> tuple[mx.array, mx.array] | None:
    """The self-attention's query, key and value weights as one (3 D, D) matrix and bias: one
    product per layer instead of three (a launch and ~15 us of host work each at batch 1).
    None for quantized layers, which keep their own products."""
    attn = block.attn
    if not all(type(layer) is nn.Linear for layer in (attn.query, attn.key, attn.value)):
        return None
    weight = mx.concatenate([attn.query.weight, attn.key.weight, attn.value.weight], axis=0)
    bias = mx.concatenate([attn.query.bias, mx.zeros_like(attn.query.bias), attn.value.bias])  # the key has no bias
    return weight, bias


def _self_attend(
    block: ResidualAttentionBlock,
    fused: tuple[mx.array, mx.array] | None,
    x: mx.array,
    keys: mx.array,
    values: mx.array,
    offset: mx.array,
    mask: mx.array,
) -> tuple[mx.array, mx.array, mx.array]:
    """One token's self-attention against the static cache; its keys/values written at `offset`."""
    attn = block.attn
    h = block.attn_ln(x)
    if fused is None:
        q, k, v = attn.query(h), attn.key(h), attn.value(h)
    else:
        q, k, v = mx.split(mx.addmm(fused[1], h, fused[0].T), 3, axis=-1)
    q, k, v = attn._heads(q), attn._heads(k), attn._heads(v)
    keys, values = _write(keys, k, offset), _write(values, v, offset)
    y = mx.fast.scaled_dot_product_attention(q, keys, values, scale=q.shape[-1] ** -0.5, mask=mask)
    return x + attn._merge(y), keys, values


def _write(cache: mx.array, new: mx.array, offset: mx.array) -> mx.array:
    """`cache` (B, H, N, Dh) with position `offset` replaced by `new` (B, H, 1, Dh).

    At a few rows, one fused select over the whole cache (~1 MB a layer at batch 1) beats
    `slice_update` at a device offset, which costs two kernels and ~15 us each on an H100 (ncu);
    at larger batches rewriting every row costs more than it saves."""
    if cache.shape[0] > SELECT_WRITE_ROWS:
        return mx.slice_update(cache, new, offset[None], axes=(2,))
    positions = mx.arange(cache.shape[2])[None, None, :, None]
    return mx.where(positions == offset, new, cache)


def _cross_attend(block: ResidualAttentionBlock, x: mx.array, keys: mx.array, values: mx.array) -> mx.array:
    """Attention to the audio in one fused kernel (keys stored (B, H, n_ctx, Dh)); the dynamic step
    spends six kernels on it (scale, scores, to float32, softmax, back, weighted sum)."""
    attn = block.cross_attn
    q = attn._heads(attn.query(block.cross_attn_ln(x)))
    return x + attn._merge(mx.fast.scaled_dot_product_attention(q, keys, values, scale=q.shape[-1] ** -0.5))


def _step(
    decoder: TextDecoder,
    fused: list,
    tokens: mx.array,
    offset: mx.array,
    self_k: list[mx.array],
    self_v: list[mx.array],
    cross_k: list[mx.array],
    cross_v: list[mx.array],
) -> tuple[mx.array, ...]:
    """tokens (B, 1) at position `offset` -> (last logits (B, V) float32, offset + 1, keys..., values...)."""
    capacity = self_k[0].shape[2]
    x = decoder.token_embedding(tokens) + mx.take(decoder.positional_embedding, offset[None], axis=0)
    mask = mx.where(mx.arange(capacity) <= offset, 0.0, -mx.inf).astype(x.dtype)[
        None, None, None
    ]  # keys not yet written weigh 0
    new_k, new_v = [], []
    for i, block in enumerate(decoder.blocks):
        x, k, v = _self_attend(block, fused[i], x, self_k[i], self_v[i], offset, mask)
        new_k.append(k)
        new_v.append(v)
        x = _cross_attend(block, x, cross_k[i], cross_v[i])
        x = x + block._mlp(x)
    logits = decoder.token_embedding.as_linear(decoder.ln(x)).astype(mx.float32)
    return (logits[:, -1, :], offset + 1, *new_k, *new_v)


class StaticDecoderStep:
    """`sampling.DecoderStep` with a static KV cache and a compiled step (same logits, same tokens).

    The first call converts the prefill's cache (`to_static`); later calls take and return a
    `StaticCache`. `compiled=False` runs the same function eagerly (tests compare the two)."""

    def __init__(self, model: Any, audio_features: mx.array, *, compiled: bool = True) -> None:
        self.decoder: TextDecoder = model.decoder
        self.audio_features = audio_features
        self.capacity = self.decoder.positional_embedding.shape[0]
        n_layer = len(self.decoder.blocks)
        fused = [fused_qkv(block) for block in self.decoder.blocks]
        mx.eval([f for f in fused if f is not None])

        def flat_step(tokens: mx.array, offset: mx.array, *arrays: mx.array) -> tuple[mx.array, ...]:
            parts = [list(arrays[i * n_layer : (i + 1) * n_layer]) for i in range(4)]
            return _step(self.decoder, fused, tokens, offset, *parts)

        self._run = mx.compile(flat_step) if compiled else flat_step

    def __call__(self, tokens: mx.array, cache: KVCache | StaticCache) -> tuple[mx.array, StaticCache]:
        if not isinstance(cache, StaticCache):
            cache = to_static(cache, self.capacity)
        batch, length = tokens.shape
        if length != 1 or cache.length + 1 > self.capacity:
            raise ShapeConversionFailed([batch, self.capacity], [batch, cache.length + length], "decoder context")
        out = self._run(tokens, cache.offset, *cache.self_k, *cache.self_v, *cache.cross_k, *cache.cross_v)
        n_layer = len(cache.self_k)
        logits, offset = out[0], out[1]
        keys, values = tuple(out[2 : 2 + n_layer]), tuple(out[2 + n_layer :])
        return logits, StaticCache(keys, values, cache.cross_k, cache.cross_v, offset, cache.length + 1)

    def reorder(self, cache: KVCache | StaticCache, rows: mx.array) -> KVCache | StaticCache:
        """The cache of the rows `rows` (beam search's survivors, each from a beam of its own window)."""
        if isinstance(cache, StaticCache):
            return cache.take(rows)
        return reorder_kv_cache(cache, rows, same_audio_rows=True)


def decoder_step(model: Any, audio_features: mx.array) -> Any:
    """The step the decoding loop should use here: static and compiled on a GPU, else the dynamic one."""
    if applies():
        return StaticDecoderStep(model, audio_features)
    return DecoderStep(model, audio_features)
