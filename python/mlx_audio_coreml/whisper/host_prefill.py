"""CPU fast path for the decoder's first call on a window: the prompt tokens and the audio keys/values.

Why: the first call runs every prompt token (3 for a plain English window, up to ~200 with a
previous-text prompt) and computes each layer's keys and values of the 1500 audio positions,
which the later one-token steps reuse. In MLX on the CPU that call cost ~55 ms for tiny.en here,
most of it products that the host's linear layers (`HostLinear`: oneDNN float32 or int8) do
faster, and it runs once per 30 s window.

Used for one row (batch 1) with no cache yet, under the same conditions as `host_decoder`.
Returns what `TextDecoder.__call__` returns, in its layouts: logits (1, T, V), the cache
(self (1, H, T, Dh) pairs and audio keys (1, H, Dh, n_ctx) / values (1, H, n_ctx, Dh)) and the
pre-softmax cross-attention scores (1, H, T, n_ctx) per layer for word timing.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import mlx.core as mx
import numpy as np

from ..cpu import attention as host_attention
from ..cpu import half_audio, host_math, onednn
from ..cpu import pool as host_pool
from ..cpu.attention import split_heads
from . import host_decoder


def applies(decoder: Any, tokens: mx.array, kv_cache: Any, audio_features: mx.array) -> bool:
    """True for a batch-1 prompt with no cache, where the one-token host step would also apply."""
    if kv_cache or tokens.ndim != 2 or tokens.shape[0] != 1 or audio_features.shape[0] != 1:
        return False
    return host_decoder.plain_float32_layers(decoder)


def _heads(rows: np.ndarray, heads: int) -> np.ndarray:
    return np.ascontiguousarray(split_heads(rows, heads))  # (H, T, Dh), one plain block per head


def _merge(per_head: np.ndarray) -> np.ndarray:
    heads, length, head_dim = per_head.shape
    merged = np.empty((length, heads * head_dim), np.float32)  # (T, D): heads side by side
    split_heads(merged, heads)[...] = per_head
    return merged


_FEW_ROWS = 8  # prompts shorter than this (a plain window's 1-3 tokens) keep numpy's products


def _attend_heads(
    q: np.ndarray, keys: np.ndarray, values: np.ndarray, *, keys_transposed: bool, mask: np.ndarray | None = None
) -> np.ndarray:
    """softmax(q keys^T (+ mask)) values for each head: q (H, T, Dh), keys (H, Dh, n) when
    `keys_transposed` else (H, n, Dh), values (H, n, Dh) -> (H, T, Dh).

    Through `host_attention.attend`: a head at a time on one worker (scores, softmax, weighted sum),
    so the head's (T, n) scores stay in that core's cache between the three, the softmax is split
    between the workers too, and the pool hands work over once per layer. Not numpy's matmul for
    long prompts: its own OpenBLAS threads them, and (6, 200, 64) @ (6, 64, 1500) took 473 ms on
    this busy 2-core machine against 30 ms head by head in oneDNN's single-threaded sgemm. Short
    prompts (a plain window's 1-3 tokens) keep numpy's route."""
    heads, rows = q.shape[:2]
    if rows < _FEW_ROWS or not onednn.available():
        scores = np.matmul(q, keys if keys_transposed else keys.transpose(0, 2, 1))
        if mask is not None:
            scores += mask
        return np.matmul(host_math.softmax_last_(scores), values)
    out = np.empty((heads, rows, values.shape[2]), np.float32)
    return host_attention.attend(q, keys, values, out, keys_transposed=keys_transposed, mask=mask)


@lru_cache(maxsize=8)
def _causal(length: int) -> np.ndarray:
    """(T, T) float32: 0 on and below the diagonal, -inf above (added to the scores: one pass, where
    fancy-indexed writes of -inf took 1.1 ms a layer for a 224-token prompt here against ~0.05)."""
    mask = np.triu(np.full((length, length), -np.inf, np.float32), 1)
    mask.flags.writeable = False
    return mask


def _queries_keys_values(w: Any, h: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The prompt rows' per-head queries (scaled in the weights), keys and values, each (H, T, Dh)."""
    width = h.shape[1]
    qkv = w.qkv(h)  # (T, 3 D)
    q, k, v = (_heads(qkv[:, i * width : (i + 1) * width], w.heads) for i in range(3))
    return q, k, v


def _self_attention(w: Any, h: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    q, k, v = _queries_keys_values(w, h)  # q scaled in the weights
    attended = _attend_heads(q, k, v, keys_transposed=False, mask=_causal(h.shape[0]))  # -inf above the diagonal
    return w.out(_merge(attended)), (k, v)


_COPY_POSITIONS = 128  # audio positions per piece of the keys' transposing copy


def _audio_heads(kv: np.ndarray, heads: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-head plain copies of the audio keys | values `kv` (n_ctx, 2 D): keys transposed
    (H, Dh, n_ctx), the cache's layout, and values (H, n_ctx, Dh).

    Why the keys go `_COPY_POSITIONS` positions at a time: numpy's transposing copy of a whole
    layer reads `kv` with a 12 KB row stride (every block's keys | values side by side) and took
    4-8 ms a layer on this busy 2-core EPYC against ~3 ms in pieces that stay in cache."""
    length, width = kv.shape[0], kv.shape[1] // 2
    keys = split_heads(kv[:, :width], heads).transpose(0, 2, 1)  # (H, Dh, n_ctx), a strided view
    k_t = np.empty(keys.shape, np.float32)
    for start in range(0, length, _COPY_POSITIONS):
        stop = min(start + _COPY_POSITIONS, length)
        np.copyto(k_t[:, :, start:stop], keys[:, :, start:stop])
    return k_t, _heads(kv[:, width:], heads)


# int8 decoding keeps the audio keys and values for its steps as float16 (cpu/half_audio.py says why)
_HALF_AUDIO_INT8 = True


def _every_blocks_audio_heads(
    audio_kv: np.ndarray, blocks: int, heads: int, half: bool
) -> list[tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]]:
    """`_audio_heads` of each block's columns of `audio_kv` (n_ctx, blocks * 2 D), the blocks spread
    over the host workers (copies that release the GIL: the prompt's layers run after them); with
    each block, the pair its steps keep: a float16 copy with `half` (where every value fits), else
    the same float32 blocks."""
    width = audio_kv.shape[1] // blocks

    def block_heads(block: int) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
        k_t, v = _audio_heads(audio_kv[:, width * block : width * (block + 1)], heads)
        k_half = half_audio.to_half(k_t) if half else None
        v_half = half_audio.to_half(v) if k_half is not None else None
        return k_t, v, ((k_half, v_half) if k_half is not None and v_half is not None else (k_t, v))

    return host_pool.run_all(block_heads, range(blocks))  # results in block order


def _keeps_half_audio(decoder: Any, head_dim: int) -> bool:
    return bool(_HALF_AUDIO_INT8 and decoder.host_int8 and head_dim == half_audio.HEAD_DIM and half_audio.supported())


def _cross_attention(w: Any, h: np.ndarray, k_t: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Attention of the prompt rows `h` to the audio's per-head keys `k_t` (H, Dh, n_ctx) and values
    `v` (H, n_ctx, Dh); returns the output and the per-head queries (word timing's scores)."""
    q = _heads(w.cross_q(h), w.heads)  # (H, T, Dh), scaled in the weights
    return w.cross_out(_merge(_attend_heads(q, k_t, v, keys_transposed=True))), q


def prefill(decoder: Any, tokens: mx.array, audio_features: mx.array) -> tuple[mx.array, Any, list[mx.array]]:
    """The prompt (1, T) through the decoder against fresh audio features (1, n_ctx, D)."""
    x, cache, cross_qk = _through_blocks(decoder, tokens, audio_features, cache_only=False)
    _, logits_layer = host_decoder.prepared_weights(decoder, int8=decoder.host_int8)
    return _logits(decoder, logits_layer, host_math.layer_norm(x, host_math.norm_params(decoder.ln))), cache, cross_qk


def prompt_cache(decoder: Any, tokens: mx.array, audio_features: mx.array) -> Any:
    """`prefill`'s cache alone, the same values, for a prompt whose logits and scores nobody reads
    (the decoding task's previous text). The last block's keys and values come from its input, so
    its attention outputs, cross-attention and MLP are skipped, and the logits: about a quarter of
    tiny.en's prefill (4 blocks), which took 14% of a greedy int8 long-form transcription on the Xeon
    (bench/results/transcribe_cpu_xeon.md)."""
    return _through_blocks(decoder, tokens, audio_features, cache_only=True)[1]


def _through_blocks(
    decoder: Any, tokens: mx.array, audio_features: mx.array, *, cache_only: bool
) -> tuple[np.ndarray, Any, list[mx.array]]:
    """The prompt through every block: (the rows after the last one, the cache, the lazy cross
    scores per layer); with `cache_only` the last block stops at its keys and values (rows and
    scores of the earlier blocks only)."""
    layers, _ = host_decoder.prepared_weights(decoder, int8=decoder.host_int8)
    prepared = decoder.host_weights
    assert prepared is not None  # built by prepared_weights
    mx.eval(tokens, audio_features)
    ids = np.asarray(tokens)[0]
    audio = np.asarray(audio_features.astype(mx.float32))[0]  # (n_ctx, D)
    x = prepared.embedding[ids] + prepared.positions[: len(ids)]  # (T, D)
    # every block's audio keys and values in one product: the audio is quantized once, not per block
    audio_kv = prepared.cross_kv(audio)  # (n_ctx, blocks * 2 D)
    heads = layers[0].heads
    half = _keeps_half_audio(decoder, audio.shape[1] // heads)
    audio_heads = _every_blocks_audio_heads(audio_kv, len(layers), heads, half)
    del audio_kv  # 18 MB for tiny.en: not kept while the prompt runs
    cache, cross_qk = [], []
    for index, (w, (k_t, audio_v, kept)) in enumerate(zip(layers, audio_heads, strict=True)):
        keys_t = mx.array(k_t[None])
        if cache_only and index == len(layers) - 1:  # its keys and values come from its input
            _, k, v = _queries_keys_values(w, host_math.layer_norm(x, w.norms[0]))
        else:
            y, (k, v) = _self_attention(w, host_math.layer_norm(x, w.norms[0]))
            x = x + y
            y, cross_q = _cross_attention(w, host_math.layer_norm(x, w.norms[1]), k_t, audio_v)
            x = x + y
            x = x + w.mlp2(host_math.gelu_np_(w.mlp1(host_math.layer_norm(x, w.norms[2]))))
            cross_qk.append(host_decoder.lazy_scores(cross_q[None], keys_t))  # (1, H, T, n_ctx), if read
        kept_audio = (keys_t, mx.array(audio_v[None])) if kept[0] is k_t else tuple(mx.array(a[None]) for a in kept)
        cache.append(((mx.array(k[None]), mx.array(v[None])), kept_audio))
    return x, cache, cross_qk


def _logits(decoder: Any, logits_layer: Any, normed: np.ndarray) -> mx.array:
    """Logits (1, T, V) of the normed final rows (T, D): the last row's on the host now, the rows
    before it as a lazy MLX product, computed only if someone reads them.

    Why: the decoding task sends a previous-text prompt (up to 223 tokens) in a call of its own and
    drops its logits; computing them here took ~210 ms of CPU per window (tiny.en int8, 200 tokens:
    a (200 x 384) @ (384 x 51864) product), a tenth of a long-form transcription's CPU time."""
    last = mx.array(logits_layer(normed[-1:])[None])  # (1, 1, V): the next token's, as a host step makes them
    if normed.shape[0] == 1:
        return last
    earlier = mx.array(normed[None, :-1]) @ decoder.token_embedding.weight.T  # (1, T - 1, V), float32, lazy
    return mx.concatenate([earlier, last], axis=1)
