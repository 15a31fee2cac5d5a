"""One decoder token against a static KV cache, on weights prepared once: the function `gpu_step`
compiles.

At batch 1 on a GPU each primitive of a step costs ~8-15 us of host work, more than its kernel, so
the step is written for few primitives:
- the hidden state is (B, D), never (B, 1, D): no reshapes around every product;
- each product's transposed weight is a view made once (`prepared_linear`), not a Transpose node
  per call; q/k/v are one product (`fused_qkv`);
- heads are a reshape of the same bytes (one position: (B, D) -> (B, H, 1, Dh)), no transposes or
  copies; positions for the cache write and the mask are constants made once;
- attention to the audio is MLX's fused kernel (keys stored (B, H, n_ctx, Dh)).
At larger batches the caches dominate a step's memory traffic (batch 24 at large-v3-turbo shapes:
~740 MB of audio keys/values and ~220 MB of self keys/values per token against ~340 MB of
weights), so `StepLayout` says how the caches are read and written: select or `slice_update`
writes, and optionally a self-attention cache kept at a `span` covering the positions written so
far (rounded up so few spans, each a compiled graph, exist).
It computes `model.TextDecoder`'s function for one token (masked keys weigh exactly zero).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import mlx.core as mx
import mlx.nn as nn

from .model import ResidualAttentionBlock, TextDecoder

SELECT_WRITE_ROWS = 64  # up to this batch, a step's keys/values are written by a select (see _write; H100-measured)
SPAN_QUANTUM = 128  # self-attention spans are multiples of this: at most 4 spans (compiled graphs) for 448 positions
Linear = Callable[[mx.array], mx.array]
CrossAttention = Literal["sdpa", "explicit"]


@dataclass(frozen=True)
class StepLayout:
    """How a step reads and writes its caches (hashable: compiled functions are kept per layout).

    select_write_rows: up to this batch a token's keys/values are written by a select over the
        whole cache, above it by `slice_update` at the device offset;
    span_quantum, span_rows: above `span_rows` rows, a step touches only a span of the self-attention
        cache (a multiple of `span_quantum` covering the positions written; 0: the whole cache):
        `gpu_loop` keeps the cache at the span's size, grown with zeros when the span grows, so
        the select write and the attention both cost the span, not the capacity. Off up to 64 rows
        until measured on a card (bench/gpu_batched.py "spans" row); at b24 on an H100 attention
        over 448 positions took ~0.17-0.20 ms a layer, over 128 ~0.06-0.08;
    cross: the audio attention through MLX's fused kernel or as products and a softmax;
    audio_pad: the loop stores the audio keys/values padded to a multiple of this many positions
        and the step reads a slice of the true length (0: stored as they are). MLX on CUDA gives
        such a slice of a buffer whose length is a multiple of 256 to cuDNN's decoding attention
        instead of its own vector kernel."""

    select_write_rows: int = SELECT_WRITE_ROWS
    span_quantum: int = SPAN_QUANTUM
    span_rows: int = SELECT_WRITE_ROWS
    cross: CrossAttention = "sdpa"
    audio_pad: int = 0

    def span(self, batch: int, needed: int, capacity: int) -> int:
        """Cache positions a step touches when `needed` of them hold keys (written ones and this token's)."""
        if self.span_quantum <= 0 or batch <= self.span_rows:
            return capacity
        return min(capacity, -(-needed // self.span_quantum) * self.span_quantum)


LAYOUT = StepLayout()  # the product's layout


def prepared_linear(layer: Any) -> Linear:
    """`layer(x)` with the transposed weight made once (a plain `nn.Linear`); others as they are."""
    if type(layer) is not nn.Linear:
        return layer
    return _product(layer.weight, layer.bias if "bias" in layer else None)


def prepared_unbiased(layer: Any) -> tuple[Linear, mx.array | float]:
    """(product without the bias, bias) of a plain `nn.Linear`, so the bias joins the elementwise
    op that follows (a residual add, GELU) in one compiled kernel: `addmm` would broadcast the bias
    in a node of its own. Other layers: (the layer, 0.0)."""
    if type(layer) is not nn.Linear or "bias" not in layer:
        return prepared_linear(layer), 0.0
    return _product(layer.weight, None), layer.bias


def _product(weight: mx.array, bias: mx.array | None) -> Linear:
    weight_t = weight.T
    mx.eval(weight_t)  # an evaluated view: no graph behind it, so no node in the compiled step
    if bias is None:
        return lambda x: x @ weight_t
    return lambda x: mx.addmm(bias, x, weight_t)


def fused_qkv(block: ResidualAttentionBlock) -> Linear | None:
    """The self-attention's query, key and value as one (D -> 3 D) product: one launch per layer
    instead of three. None for quantized layers, which keep their own products."""
    attn = block.attn
    if not all(type(layer) is nn.Linear for layer in (attn.query, attn.key, attn.value)):
        return None
    weight = mx.concatenate([attn.query.weight, attn.key.weight, attn.value.weight], axis=0)
    bias = mx.concatenate([attn.query.bias, mx.zeros_like(attn.query.bias), attn.value.bias])  # the key has no bias
    mx.eval(weight, bias)
    return _product(weight, bias)


@dataclass(frozen=True)
class PreparedBlock:
    """One residual block's layer norms (modules) and products (`prepared_linear`)."""

    n_head: int
    attn_ln: Any
    qkv: Linear | None
    query: Linear
    key: Linear
    value: Linear
    out: tuple[Linear, mx.array | float]  # (product, bias): `prepared_unbiased`
    cross_ln: Any
    cross_query: Linear
    cross_out: tuple[Linear, mx.array | float]
    mlp_ln: Any
    mlp1: tuple[Linear, mx.array | float]
    mlp2: tuple[Linear, mx.array | float]

    @staticmethod
    def of(block: ResidualAttentionBlock) -> PreparedBlock:
        attn, cross = block.attn, block.cross_attn
        return PreparedBlock(
            attn.n_head, block.attn_ln, fused_qkv(block),
            prepared_linear(attn.query), prepared_linear(attn.key), prepared_linear(attn.value), prepared_unbiased(attn.out),
            block.cross_attn_ln, prepared_linear(cross.query), prepared_unbiased(cross.out),
            block.mlp_ln, prepared_unbiased(block.mlp1), prepared_unbiased(block.mlp2),
        )  # fmt: skip


class PreparedDecoder:
    """A `TextDecoder`'s weights laid out for `step`, and the constant positions of its cache."""

    def __init__(self, decoder: TextDecoder) -> None:
        self.decoder = decoder
        self.blocks = [PreparedBlock.of(block) for block in decoder.blocks]
        capacity = decoder.positional_embedding.shape[0]
        embedding = decoder.token_embedding
        self.logits: Linear = (
            _product(embedding.weight, None) if type(embedding) is nn.Embedding else embedding.as_linear
        )  # the output projection is the token embedding
        self.cache_positions = mx.arange(capacity).reshape(1, 1, capacity, 1)
        self.key_positions = mx.arange(capacity).reshape(1, 1, 1, capacity)
        mx.eval(self.cache_positions, self.key_positions)
        self._spans: dict[int, mx.array] = {}

    def _positions(self, span: int) -> mx.array:
        """The first `span` key positions, an evaluated constant (no slice node per token)."""
        if span not in self._spans:
            self._spans[span] = mx.contiguous(self.key_positions[..., :span])
            mx.eval(self._spans[span])
        return self._spans[span]

    def step(
        self,
        tokens: mx.array,
        offset: mx.array,
        self_k: list[mx.array],
        self_v: list[mx.array],
        cross_k: list[mx.array],
        cross_v: list[mx.array],
        *,
        raw_logits: bool = False,
        layout: StepLayout = LAYOUT,
        span: int | None = None,
        audio_len: int | None = None,
    ) -> tuple[mx.array, ...]:
        """tokens (B,) or (B, 1) at position `offset` -> (logits (B, V) float32, offset + 1, keys..., values...).
        `raw_logits`: logits in the model's dtype, for a caller whose next op promotes them anyway
        (one (B, V) conversion kernel less). `span`: cache positions the self-attention reads
        (None: all); the caller guarantees offset < span. `audio_len`: audio positions to read of
        padded audio keys/values (None: all)."""
        decoder = self.decoder
        tokens = tokens.reshape(-1) if tokens.ndim > 1 else tokens
        x = decoder.token_embedding(tokens) + mx.take(decoder.positional_embedding, offset, axis=0)  # (B, D)
        positions = self.key_positions if span is None else self._positions(span)
        mask = mx.where(positions <= offset, 0.0, float("-inf")).astype(x.dtype)  # unwritten keys weigh 0
        new_k, new_v = [], []
        for i, block in enumerate(self.blocks):
            x, k, v = self._self_attend(block, x, self_k[i], self_v[i], offset, mask, layout)
            new_k.append(k)
            new_v.append(v)
            q = _heads(block.cross_query(block.cross_ln(x)), block.n_head)
            audio_k, audio_v = cross_k[i], cross_v[i]
            if audio_len is not None and audio_len < audio_k.shape[2]:
                audio_k, audio_v = audio_k[:, :, :audio_len], audio_v[:, :, :audio_len]
            y = _cross_attend(q, audio_k, audio_v, layout.cross)
            x = _residual(x, block.cross_out, y.reshape(x.shape))
            (mlp1, bias1), mlp2 = block.mlp1, block.mlp2
            x = _residual(x, mlp2, nn.gelu(mlp1(block.mlp_ln(x)) + bias1))
        logits = self.logits(decoder.ln(x))
        logits = logits if raw_logits else logits.astype(mx.float32)
        return (logits, offset + 1, *new_k, *new_v)

    def _self_attend(
        self,
        block: PreparedBlock,
        x: mx.array,
        keys: mx.array,
        values: mx.array,
        offset: mx.array,
        mask: mx.array,
        layout: StepLayout,
    ) -> tuple[mx.array, mx.array, mx.array]:
        """One token's self-attention against the static cache (its first `mask`-width positions);
        its keys/values written at `offset`."""
        h = block.attn_ln(x)
        if block.qkv is None:
            q, k, v = block.query(h), block.key(h), block.value(h)
        else:
            q, k, v = mx.split(block.qkv(h), 3, axis=-1)
        q, k, v = (_heads(t, block.n_head) for t in (q, k, v))
        keys, values = self._write(keys, k, offset, layout), self._write(values, v, offset, layout)
        span = mask.shape[-1]
        read_k, read_v = (keys, values) if span == keys.shape[2] else (keys[:, :, :span], values[:, :, :span])
        y = mx.fast.scaled_dot_product_attention(q, read_k, read_v, scale=q.shape[-1] ** -0.5, mask=mask)
        return _residual(x, block.out, y.reshape(x.shape)), keys, values

    def _write(self, cache: mx.array, new: mx.array, offset: mx.array, layout: StepLayout) -> mx.array:
        """`cache` (B, H, N, Dh) with position `offset` replaced by `new` (B, H, 1, Dh).

        At a few rows, one fused select over the whole cache (~1 MB a layer at batch 1) beats
        `slice_update` at a device offset, which costs two kernels and ~15 us each on an H100 (ncu).
        At batch 24 too: slice_update's output is not donated there, so it copies the whole cache
        anyway (0.16 ms a layer), and the select made bench/gpu_batched.py's b24 run 0.661 -> 0.574 s
        (bench/results/gpu_batched_h100_s5*.md); a span read is dropped with it, which costs less."""
        if cache.shape[0] > layout.select_write_rows:
            return mx.slice_update(cache, new, offset.reshape(1), axes=(2,))
        positions = self.cache_positions if cache.shape[2] == self.cache_positions.shape[2] else None
        if positions is None:  # a cache kept at a span's size (gpu_loop)
            positions = self._positions(cache.shape[2]).reshape(1, 1, -1, 1)
        return mx.where(positions == offset, new, cache)


def _cross_attend(q: mx.array, keys: mx.array, values: mx.array, how: CrossAttention) -> mx.array:
    """q (B, H, 1, Dh) against the audio's keys/values (B, H, n_ctx, Dh), unmasked."""
    scale = q.shape[-1] ** -0.5
    if how == "sdpa":
        return mx.fast.scaled_dot_product_attention(q, keys, values, scale=scale)
    scores = (q * mx.array(scale, q.dtype)) @ keys.swapaxes(-1, -2)  # (B, H, 1, n_ctx)
    return mx.softmax(scores, axis=-1, precise=True) @ values


def _residual(x: mx.array, product: tuple[Linear, mx.array | float], y: mx.array) -> mx.array:
    """x + y W^T + b: the product, then one fused add of the bias and the residual."""
    return x + (product[0](y) + product[1])


def _heads(x: mx.array, n_head: int) -> mx.array:
    """(B, D) -> (B, H, 1, Dh): for one position the head-major layout is the same bytes."""
    batch, width = x.shape
    return x.reshape(batch, n_head, 1, width // n_head)
