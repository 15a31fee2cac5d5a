"""A compiled text-decoder step with a preallocated (static) KV cache, for decoding on a GPU.

At batch 1 on a GPU the dynamic step (`sampling.DecoderStep`) is bound by launches and host work:
every step builds a fresh graph whose cache grows by a concatenation per layer, so MLX cannot reuse
a compiled graph. Here the self-attention keys and values live in arrays of the decoder's full
context (n_text_ctx positions, 448), the new token's keys and values are written in place at a
position held on the device, and positions not yet written are masked out, so every step has the
same shapes and one `mx.compile`d function serves every window of a model (`StepProgram`). The
token's arithmetic, written for few primitives, is `static_step.PreparedDecoder.step`. The step
computes the dynamic one's function (masked keys weigh exactly zero), equal up to rounding, so
greedy decoding picks the same tokens; `StaticDecoderStep` is a drop-in for `DecoderStep` in
`sampling.sample_tokens` and `BeamSearch` (it has `reorder`); `gpu_loop` runs whole tokens on it.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

import mlx.core as mx

from ..errors import ShapeConversionFailed
from . import host_cache
from .model import KVCache, TextDecoder, reorder_kv_cache
from .sampling import DecoderStep
from .static_step import PreparedDecoder

ENABLED = True  # the product's switch: False keeps the dynamic step everywhere


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


class StepProgram:
    """One decoder's fused q/k/v weights and its compiled step, made once per decoder and shared by
    every window's `StaticDecoderStep` (tracing a compiled step costs far more than a window's
    tokens save if redone per window). `functions` holds other compiled functions built on the same
    step (`gpu_loop`'s whole-token functions), keyed by their maker."""

    def __init__(self, decoder: TextDecoder, compiled: bool) -> None:
        self.decoder = decoder
        self.compiled = compiled
        self.prepared = PreparedDecoder(decoder)
        self.run = mx.compile(self.flat_step) if compiled else self.flat_step
        self.functions: dict[Any, Any] = {}

    def flat_step(
        self, tokens: mx.array, offset: mx.array, *arrays: mx.array, raw_logits: bool = False
    ) -> tuple[mx.array, ...]:
        """`_step` on flat arguments (tokens, offset, self keys..., self values..., audio keys...,
        audio values...), the form `mx.compile` takes; returns (logits, offset + 1, keys..., values...)."""
        n_layer = len(self.decoder.blocks)
        parts = [list(arrays[i * n_layer : (i + 1) * n_layer]) for i in range(4)]
        return self.prepared.step(tokens, offset, *parts, raw_logits=raw_logits)


_PROGRAMS: dict[tuple[int, bool], tuple[weakref.ref, StepProgram]] = {}


def step_program(decoder: TextDecoder, compiled: bool = True) -> StepProgram:
    """The decoder's `StepProgram`, made on first use (held while the decoder lives)."""
    key = (id(decoder), compiled)
    held = _PROGRAMS.get(key)
    if held is not None and held[0]() is decoder:
        return held[1]
    for stale in [k for k, (ref, _) in _PROGRAMS.items() if ref() is None]:
        del _PROGRAMS[stale]
    made = StepProgram(decoder, compiled)
    _PROGRAMS[key] = (weakref.ref(decoder), made)
    return made


class StaticDecoderStep:
    """`sampling.DecoderStep` with a static KV cache and a compiled step (same logits, same tokens).

    The first call converts the prefill's cache (`to_static`); later calls take and return a
    `StaticCache`. `compiled=False` runs the same function eagerly (tests compare the two)."""

    def __init__(self, model: Any, audio_features: mx.array, *, compiled: bool = True) -> None:
        self.decoder: TextDecoder = model.decoder
        self.audio_features = audio_features
        self.capacity = self.decoder.positional_embedding.shape[0]
        self.compiled = compiled
        self.program = step_program(self.decoder, compiled)

    def __call__(self, tokens: mx.array, cache: KVCache | StaticCache) -> tuple[mx.array, StaticCache]:
        if not isinstance(cache, StaticCache):
            cache = to_static(cache, self.capacity)
        batch, length = tokens.shape
        if length != 1 or cache.length + 1 > self.capacity:
            raise ShapeConversionFailed([batch, self.capacity], [batch, cache.length + length], "decoder context")
        out = self.program.run(tokens, cache.offset, *cache.self_k, *cache.self_v, *cache.cross_k, *cache.cross_v)
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
