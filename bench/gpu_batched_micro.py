"""Pieces of one decoder step at batch B (large-v3-turbo shapes), timed alone: where a step's
device time goes in gpu_batched.py's decode.

Each piece is run `REPEATS` times on different inputs in one graph, then the device is waited
for; ms per call = wall time / REPEATS (host dispatch included, but at these sizes each call's
kernels take longer than queuing them). Also the graph nodes of one whole token of the product's
loop at this batch (`gpu_loop.token_function` with the product layout).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import gpu_common as gc
from mlx_audio_coreml.whisper import gpu_loop
from mlx_audio_coreml.whisper.device_filters import RowState, device_rules
from mlx_audio_coreml.whisper.gpu_step import StaticDecoderStep, to_static
from mlx_audio_coreml.whisper.model import ModelDimensions, Whisper
from mlx_audio_coreml.whisper.static_step import LAYOUT

import mlx.core as mx  # isort: skip

REPEATS = 20


def _ms_per_call(make: Callable[[int], mx.array]) -> float:
    """Warm once, then REPEATS calls queued together and waited for."""
    mx.eval(make(0))
    mx.synchronize()
    start = time.perf_counter()
    mx.eval([make(i) for i in range(REPEATS)])
    mx.synchronize()
    return (time.perf_counter() - start) * 1e3 / REPEATS


def pieces(d: ModelDimensions, dtype: mx.Dtype, batch: int) -> list[tuple[str, float | str]]:
    """(label, ms per call) of the step's memory-heavy pieces at `batch` rows."""
    h, dh, n_ctx, cap, width = (
        d.n_text_head,
        d.n_text_state // d.n_text_head,
        d.n_audio_ctx,
        d.n_text_ctx,
        d.n_text_state,
    )
    q = [mx.random.normal((batch, h, 1, dh)).astype(dtype) for _ in range(REPEATS)]
    audio_k, audio_v = (mx.random.normal((batch, h, n_ctx, dh)).astype(dtype) for _ in range(2))
    self_k, self_v = (mx.random.normal((batch, h, cap, dh)).astype(dtype) for _ in range(2))
    x = [mx.random.normal((batch, width)).astype(dtype) for _ in range(REPEATS)]
    w_vocab = mx.random.normal((d.n_vocab, width)).astype(dtype) * 0.02
    w_mlp = mx.random.normal((4 * width, width)).astype(dtype) * 0.02
    padded = [(0, 0), (0, 0), (0, -n_ctx % 256), (0, 0)]
    audio_kp, audio_vp = mx.pad(audio_k, padded), mx.pad(audio_v, padded)  # a multiple of 256 positions
    mx.eval(q, audio_k, audio_v, audio_kp, audio_vp, self_k, self_v, x, w_vocab, w_mlp)
    scale = dh**-0.5

    def self_attention(span: int) -> Callable[[int], mx.array]:
        mask = mx.where(mx.arange(span) < span - 3, 0.0, float("-inf")).astype(dtype)
        k, v = self_k[:, :, :span], self_v[:, :, :span]
        return lambda i: mx.fast.scaled_dot_product_attention(q[i], k, v, scale=scale, mask=mask)

    def explicit(i: int) -> mx.array:
        scores = (q[i] * mx.array(scale, dtype)) @ audio_k.swapaxes(-1, -2)
        return mx.softmax(scores, axis=-1, precise=True) @ audio_v

    def write(i: int) -> mx.array:
        return mx.slice_update(self_k, q[i], mx.array([i]), axes=(2,))

    plans: list[tuple[str, Callable[[int], mx.array]]] = [
        (f"audio attention, mx.fast sdpa ({batch}, {h}, 1, {dh}) x ({n_ctx} keys), one layer",
         lambda i: mx.fast.scaled_dot_product_attention(q[i], audio_k, audio_v, scale=scale)),
        ("audio attention, explicit (QK^T, softmax, AV), one layer", explicit),
        (f"self attention with mask over all {cap} cache positions, one layer", self_attention(cap)),
        ("self attention with mask over a 128-position span, one layer", self_attention(128)),
        (f"cache write: slice_update of one position into ({batch}, {h}, {cap}, {dh}), not donated (a whole copy)", write),
        (f"logits product ({batch}, {width}) x ({width}, {d.n_vocab})", lambda i: x[i] @ w_vocab.T),
        (f"MLP up product ({batch}, {width}) x ({width}, {4 * width})", lambda i: x[i] @ w_mlp.T),
        (f"audio attention, mx.fast sdpa on slices of {audio_kp.shape[2]}-position buffers (cuDNN decode if taken)",
         lambda i: mx.fast.scaled_dot_product_attention(
             q[i], audio_kp[:, :, :n_ctx], audio_vp[:, :, :n_ctx], scale=scale)),
    ]  # fmt: skip
    found: list[tuple[str, float | str]] = []
    for label, make in plans:
        try:
            found.append((label, _ms_per_call(make)))
        except Exception as exc:  # one piece failing leaves the others
            found.append((label, gc.not_available(exc)))
    return found


def decode_ms(model: Whisper, d: ModelDimensions, batch: int, tokens: int) -> float:
    """ms per step of the product's loop (gpu_loop.decode_tokens) over `tokens` steps at `batch` rows
    of random audio features, prefill excluded, after one warm-up pass: near the batch-1 figure
    means the host's dispatch bounds a step; the excess over it is device time."""
    features = mx.random.normal((batch, d.n_audio_ctx, d.n_audio_state)).astype(model.dtype)
    prompt = gc.prompt_tokens(d)
    prefix = mx.array([prompt] * batch, dtype=mx.int32)
    filters = gc.product_filters(d, len(prompt))
    step = StaticDecoderStep(model, features)
    elapsed = 0.0
    for _ in range(2):  # the first pass compiles
        logits, cache, _ = model.decoder(prefix, features)
        mx.eval(logits, cache)
        start = time.perf_counter()
        gpu_loop.decode_tokens(step, logits[:, -1, :], cache, prefix, filters, temperature=0.0, eot=-1, n_steps=tokens)
        elapsed = time.perf_counter() - start
    return elapsed * 1e3 / tokens


def token_nodes(model: Whisper, d: ModelDimensions, batch: int) -> str:
    """Graph nodes of one token of the product's device loop at `batch` rows (its first span)."""
    features = mx.random.normal((batch, d.n_audio_ctx, d.n_audio_state)).astype(model.dtype)
    prompt = gc.prompt_tokens(d)
    prefix = mx.array([prompt] * batch, dtype=mx.int32)
    logits, cache, _ = model.decoder(prefix, features)
    step = StaticDecoderStep(model, features)
    rules = device_rules(gc.product_filters(d, len(prompt)), d.n_vocab)
    if rules is None:
        return "-"
    static, state = to_static(cache, step.capacity), RowState.start(batch)
    inputs = [*state.arrays(), static.offset, *static.self_k, *static.self_v, *static.cross_k, *static.cross_v]
    last = logits[:, -1, :]
    mx.eval(inputs, last)
    span = LAYOUT.span(batch, static.length + 1, step.capacity)
    run = gpu_loop.token_function(
        step.program, rules.grammar, -1, False, True, LAYOUT, None if span == step.capacity else span
    )
    total, kernels = gc.graph_nodes(list(run(last, rules.mask, *inputs)))
    return f"{total} ({kernels} not views), span {span}"
