"""CPU fast path for one greedy decoder step: the whole step in numpy on MLX's own buffers.

Why: a decoder step for one token is ~25 small operations per layer on (1, D) rows. MLX's CPU
backend spends tens of microseconds per operation on scheduling and allocation and sends each
one-row product to gemm; here the weight products are `HostLinear` calls (OpenBLAS's gemv in
float32, oneDNN's int8 products for int8 models) and the per-head products one batched numpy
matmul each. What is left is reading weights from memory: tiny.en's 51864-row logits product
is 80 MB in float32 (3.5 ms on 2 idle cores here) and 20 MB in int8 (0.5 ms).

The self-attention keys and values stay on the host between steps (`host_cache.HostKV`, a buffer
each step writes its token's row into) rather than being joined and copied into MLX every step.

Used only when `host_math.available` (MLX on the CPU, float32), for one new token per row (greedy:
one row; beam search: a row per beam) whose cache already holds the audio keys and values, with
plain `nn.Linear` layers (MLX-quantized models stay in MLX). Inputs and outputs are MLX arrays in the layout
`model.py` documents, so the rest of the decoder never sees the difference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from .. import config
from ..cpu import amx_policy, half_audio, host_math, native_kernels, onednn
from ..cpu import linear as host_linear
from ..cpu import pool as host_pool
from ..cpu import team as host_team
from ..cpu.linear import HostLinear
from . import host_block
from .host_cache import HostKV

# Per-head products are numpy's batched matmul: one call for a group of heads (their sizes keep
# numpy's BLAS on one thread); the weight products go through `HostLinear`.
# MLX_AUDIO_COREML_SPLIT_CROSS=1 splits cross-attention's heads between the host workers for every
# step (numpy's route and our C kernel's), 0 never. Unset: a step with a team (cpu/team.py: int8,
# our C kernels, 2+ cores) splits them in C, every step; otherwise our C kernel splits one-row
# steps (greedy) on CPUs with AMX only. Measured through the pool, 3.2 min of speech, 2 cores, tiny.en int8, in turns:
# - Xeon (AMX; one core reads L3 at ~20 GB/s): greedy 4.74 s split against 5.49 s (faster-whisper
#   4.28); beam 5 10.14 against 8.36: five rows' hand-off costs more than the reading it spreads;
# - this AMD EPYC (~55 GB/s a core): greedy 7.58 split against 6.91 s: the hand-off costs more.
_SPLIT_CROSS: bool | None = {"1": True, "0": False}.get(config.setting(config.SPLIT_CROSS))


# float32 models: each block in one C call (host_block) needs its products as prepared oneDNN
# primitives, whose weights are a reordered second copy. Only decoders whose block weights stay
# under this get it (tiny 33 MB, base 88, small 396, large-v3-turbo 367; not medium's 1.4 GB or
# large's 2.9 GB): there the step is BLAS's, as before.
_FLOAT32_BLOCK_BYTES = 512 * 2**20
# A float32 block product whose weights take this many bytes is cut in column pieces that the
# step's team shares (one per worker): one core streamed a float32 block's weights through oneDNN's
# prepared products at ~11 GB/s on this 2-core AMD EPYC, two at ~29 GB/s. tiny.en (every product
# 590 KB or more), 1.5 min of real speech, the same session in turns, 8 rounds
# (`bench/longform_phases.py --ab-pieces`): greedy steps 1.92 against 2.23 s (the whole run 3.54
# against 3.93 s), beam 5 (4 rounds) 2.24 against 2.46 s. int8 products stay whole: cutting tiny.en's
# (147-590 KB, quantized in every piece) gained nothing (greedy steps 0.60 against 0.59 s here; on the
# Intel Xeon 2.02 against 1.96 ms a step); larger int8 models were not measured.
_SPLIT_BLOCK_BYTES = 512 * 1024
_SPLIT_INT8_BLOCKS = False
_BLOCK_PIECES_PER_WORKER = 1


def in_one_call(decoder: Any) -> bool:
    """The decoder's steps run each block in one C call and open a team (cpu/team.py): int8, or a
    float32 decoder whose block weights' second copy stays under `_FLOAT32_BLOCK_BYTES`."""
    if not (plain_float32_layers(decoder) and native_kernels.available()):
        return False
    if decoder.host_int8:
        return True
    width = decoder.token_embedding.weight.shape[1]
    per_block = 14 * width * width * 4  # q/k/v 3 D^2, out, cross q, cross out 1 each, MLP 8: float32 bytes
    return onednn.available() and len(decoder.blocks) * per_block <= _FLOAT32_BLOCK_BYTES


def applies(decoder: Any, tokens: mx.array, kv_cache: Any) -> bool:
    """True when this step can run on the host: one new token against a cache with audio K/V."""
    if tokens.ndim != 2 or tokens.shape[1] != 1 or not kv_cache or kv_cache[0][1] is None or kv_cache[0][0] is None:
        return False  # one new token per row (beams are rows) against a cache with audio K/V
    return plain_float32_layers(decoder)


def plain_float32_layers(decoder: Any) -> bool:
    """Host math applies (CPU, float32) and the layers are plain (not MLX-quantized)."""
    if not host_math.available(decoder.token_embedding.weight.dtype):
        return False
    block = decoder.blocks[0]
    return (
        type(block.mlp1) is nn.Linear
        and type(block.attn.query) is nn.Linear
        and type(decoder.token_embedding) is nn.Embedding
    )


def _array(value: mx.array) -> np.ndarray:
    """A numpy view of an evaluated MLX array (a copy only when it is not one plain block)."""
    return np.asarray(value)


@dataclass
class PreparedDecoder:
    """A decoder's blocks and logits layer as host kernels, kept on the decoder (`host_weights`)."""

    layers: list[_LayerWeights]
    logits: HostLinear
    final_norm: host_math.Norm
    embedding: np.ndarray  # (V, D) token embedding, a view of the MLX weights
    positions: np.ndarray  # (n_ctx, D)
    cross_kv: HostLinear  # every block's audio keys | values from the audio features, as one product


class _LayerWeights:
    """One decoder block's weights as host linear layers; self-attention q/k/v fused into one.
    `one_call`: the block runs in one C call where it can (`in_one_call`)."""

    def __init__(self, block: Any, int8: bool, one_call: bool) -> None:
        attn, cross = block.attn, block.cross_attn
        self.sources = [attn.query.weight, attn.key.weight, attn.value.weight, block.mlp1.weight]
        self.int8, self.one_call = int8, one_call
        # queries pre-scaled by 1/sqrt(Dh) in the weights (a power of two for Whisper's Dh = 64: the
        # same float32 values as scaling each step's queries, without that pass)
        scale = query_scale(attn.query.weight.shape[0], attn.n_head)
        self.qkv = host_linear.fused([attn.query, attn.key, attn.value], int8, [scale, 1.0, 1.0])  # one (3 D, D)
        self.cross_q = host_linear.fused([cross.query], int8, [scale])
        layers = (attn.out, cross.out, block.mlp1, block.mlp2)
        self.out, self.cross_out, self.mlp1, self.mlp2 = (host_linear.from_layer(layer, int8) for layer in layers)
        if (
            one_call and (_SPLIT_INT8_BLOCKS or not int8) and host_team.possible()
        ):  # the step's team shares large products' pieces
            for layer in (self.qkv, self.out, self.cross_q, self.cross_out, self.mlp1, self.mlp2):
                if layer.weight.nbytes >= _SPLIT_BLOCK_BYTES:
                    layer.split_for_team(_BLOCK_PIECES_PER_WORKER * host_pool.worker_count())
        self.norms = [host_math.norm_params(n) for n in (block.attn_ln, block.cross_attn_ln, block.mlp_ln)]
        self.heads = attn.n_head
        self.block_calls = host_block.BlockCalls()  # the whole block in one C call, per thread and row count

    def current(self, block: Any, int8: bool) -> bool:
        """False once the block's weights were replaced (reloaded, quantized): rebuild then."""
        now = [block.attn.query.weight, block.attn.key.weight, block.attn.value.weight, block.mlp1.weight]
        return int8 == self.int8 and all(a is b for a, b in zip(self.sources, now))


def query_scale(width: int, heads: int) -> float:
    """Attention's 1/sqrt(head size), as the float32 value the MLX model multiplies by."""
    return float(np.float32((width // heads) ** -0.5))


def prepared_weights(decoder: Any, int8: bool) -> tuple[list[_LayerWeights], HostLinear]:
    """The blocks and the logits layer (the token embedding), prepared once per weights and precision."""
    prepared: PreparedDecoder | None = decoder.host_weights
    if prepared is None or not all(p.current(b, int8) for p, b in zip(prepared.layers, decoder.blocks)):
        mx.eval(decoder.parameters())
        one_call = in_one_call(decoder)
        logits = HostLinear(_array(decoder.token_embedding.weight), None, int8=int8)
        prepared = PreparedDecoder(
            [_LayerWeights(block, int8, one_call) for block in decoder.blocks],
            logits,
            host_math.norm_params(decoder.ln),
            _array(decoder.token_embedding.weight),
            _array(decoder.positional_embedding),
            host_linear.fused(
                [layer for b in decoder.blocks for layer in (b.cross_attn.key, b.cross_attn.value)], int8
            ),
        )
        decoder.host_weights = prepared  # a plain attribute: MLX keeps it off the parameter tree
    return prepared.layers, prepared.logits


def _heads(rows: np.ndarray, heads: int) -> np.ndarray:
    batch, width = rows.shape
    return rows.reshape(batch, heads, 1, width // heads)  # (B, H, 1, Dh)


def _grown(cached: HostKV | mx.array, rows: np.ndarray, limit: int) -> HostKV:
    """Cached keys or values with this step's rows after them (in place in a HostKV's buffer; the
    prefill's MLX arrays are copied into one once)."""
    if isinstance(cached, HostKV):
        return cached.appended(rows, limit)
    return HostKV.from_rows(np.concatenate([_array(cached), rows], axis=2), limit)


def _self_attention(
    w: _LayerWeights, h: np.ndarray, cache: tuple[Any, Any], limit: int
) -> tuple[np.ndarray, tuple[HostKV, HostKV]]:
    batch, width = h.shape
    qkv = w.qkv(h)  # (B, 3 D)
    q = _heads(qkv[:, :width], w.heads)  # scaled in the weights
    k = _grown(cache[0], _heads(qkv[:, width : 2 * width], w.heads), limit)  # (B, H, T + 1, Dh)
    v = _grown(cache[1], _heads(qkv[:, 2 * width :], w.heads), limit)
    if native_kernels.available():  # every row and head in one C call
        y = native_kernels.attend_cache(qkv[:, :width], k.view(), v.view(), np.empty((batch, width), np.float32))
        return w.out(y), (k, v)
    weights = host_math.softmax_last_(np.matmul(q, k.view().transpose(0, 1, 3, 2)))  # (B, H, 1, T + 1)
    y = np.matmul(weights, v.view()).reshape(batch, width)  # (B, H, 1, Dh) -> heads side by side
    return w.out(y), (k, v)


def _cross_attention(
    w: _LayerWeights, h: np.ndarray, cache: tuple[mx.array, mx.array]
) -> tuple[np.ndarray, np.ndarray]:
    batch, width = h.shape
    q_rows = w.cross_q(h)  # (B, D), scaled in the weights
    q = _heads(q_rows, w.heads)
    k_t, v = _array(cache[0]), _array(cache[1])  # (B or 1, H, Dh, n_ctx), (B or 1, H, n_ctx, Dh)
    if _native_attention(k_t, v):  # every row and head in C; rows sharing audio read it once
        return w.cross_out(_native_cross(q_rows, k_t, v, w.heads)), q
    if k_t.shape[0] == 1 and batch > 1:  # beams or samples of one window: the audio is read once per head
        by_head = np.ascontiguousarray(q[:, :, 0].transpose(1, 0, 2))  # (H, B, Dh); strided, numpy skips BLAS
        out = np.empty(by_head.shape, np.float32)  # (H, B, Dh)
        _by_head_groups(w.heads, lambda hs: _attend(by_head[hs], k_t[0, hs], v[0, hs], out[hs]))
        return w.cross_out(out.transpose(1, 0, 2).reshape(batch, width)), q
    out = np.empty(q.shape, np.float32)  # (B, H, 1, Dh)
    _by_head_groups(w.heads, lambda hs: _attend(q[:, hs], k_t[:, hs], v[:, hs], out[:, hs]))
    return w.cross_out(out.reshape(batch, width)), q


def _native_attention(k_t: np.ndarray, v: np.ndarray) -> bool:
    """Cross-attention runs in our C kernel: built, and the audio keys and values plain blocks
    (float32, or float16 where this CPU takes them: cpu/half_audio.py).
    Measured on this EPYC, one layer of tiny.en: one row 76 against 111-123 us in numpy, five beam
    rows 362 against 789 us (OpenBLAS repacks the keys per head for five rows)."""
    plain = k_t.dtype == v.dtype == np.float32 or half_audio.is_half_pair(k_t, v) and half_audio.supported()
    return native_kernels.available() and k_t.flags.c_contiguous and v.flags.c_contiguous and plain


def _native_cross(q_rows: np.ndarray, k_t: np.ndarray, v: np.ndarray, heads: int) -> np.ndarray:
    """Our kernel over all heads, in one call, or split (`_SPLIT_CROSS`, above) a group of heads per
    host worker (each core reads its heads' share of the audio)."""
    out = np.empty_like(q_rows)
    if not _splits_cross(q_rows.shape[0], k_t.shape[0] == 1):
        return native_kernels.attend_rows(q_rows, k_t, v, out)
    head_dim = q_rows.shape[1] // heads

    def part(hs: slice) -> None:
        cols = slice(hs.start * head_dim, hs.stop * head_dim)
        native_kernels.attend_rows(q_rows[:, cols], k_t[:, hs], v[:, hs], out[:, cols])

    host_pool.run_all(part, host_pool.even_ranges(heads))
    return out


def _splits_cross(rows: int, one_audio: bool) -> bool:
    """Whether our kernel's cross-attention is split over the host workers (`_SPLIT_CROSS`): only
    for rows sharing one audio (a head range of it is still one plain block)."""
    split = _SPLIT_CROSS if _SPLIT_CROSS is not None else rows == 1 and amx_policy.cpu_has_amx()
    return bool(split) and one_audio and host_pool.worker_count() > 1 and not host_pool.in_worker()


def _attend(q: np.ndarray, k_t: np.ndarray, v: np.ndarray, out: np.ndarray) -> None:
    """out = softmax(q k^T) v over the last two axes (q already scaled; any leading axes)."""
    np.matmul(host_math.softmax_last_(np.matmul(q, k_t)), v, out=out)


def _by_head_groups(heads: int, work: Callable[[slice], object]) -> None:
    """work(heads) for all heads: one group per host worker when `_SPLIT_CROSS` (the audio's keys
    and values, 4.6 MB a layer for tiny.en, are most of a step's reading besides the logits; each
    core reads its heads' share), else at once."""
    if _SPLIT_CROSS and host_pool.worker_count() > 1 and not host_pool.in_worker():
        host_pool.run_all(work, host_pool.even_ranges(heads))
    else:
        work(slice(None))


def lazy_scores(scaled_q: np.ndarray, keys_t: mx.array) -> mx.array:
    """The cross-attention scores q k^T (word timing reads them) as a lazy MLX product: computed only
    if read. The decoding loop drops them; making them here cost a copy per layer per step (a
    prefill's 225-token prompt: 8 MB per layer)."""
    return mx.array(scaled_q) @ keys_t


def _block(
    w: _LayerWeights, x: np.ndarray, cache: Any, limit: int
) -> tuple[np.ndarray, tuple[HostKV, HostKV], np.ndarray]:
    audio = _array(cache[1][0]), _array(cache[1][1])  # keys_t, values
    if host_block.applies(w) and _native_attention(*audio):
        # the whole block in one C call (two around a split cross-attention); an open team splits
        # cross-attention's heads in C itself (unless MLX_AUDIO_COREML_SPLIT_CROSS=0)
        team = host_team.current() if _SPLIT_CROSS is not False else None
        split = team is None and _splits_cross(x.shape[0], audio[0].shape[0] == 1)
        done = host_block.run(w, x, (cache[0], audio), limit, split, _native_cross, team)
        if done is not None:
            x, self_kv, cross_q = done
            return x, self_kv, _heads(cross_q, w.heads)
    y, self_kv = _self_attention(w, host_math.layer_norm(x, w.norms[0]), cache[0], limit)
    x = x + y
    y, cross_q = _cross_attention(w, host_math.layer_norm(x, w.norms[1]), cache[1])
    x = x + y
    hidden = w.mlp1(host_math.layer_norm(x, w.norms[2]))
    return x + w.mlp2(host_math.gelu_np_(hidden)), self_kv, cross_q


def decode_step(
    decoder: Any, tokens: mx.array, kv_cache: Any, offset: int, scores: bool = True, host_logits: bool = False
) -> tuple[Any, Any, list[mx.array]]:
    """One new token per row, tokens (B, 1), through the decoder -> (logits (B, 1, V) float32, new
    cache, cross scores (B, H, 1, n_ctx) per layer, or none without `scores`). Beams are rows.
    `host_logits`: the logits as the numpy (B, V) block made here (no copy into MLX)."""
    prepared = _prepared_for_step(decoder, kv_cache)
    mx.eval(tokens)
    ids = np.asarray(tokens)[:, 0]
    limit = prepared.positions.shape[0]
    x = prepared.embedding[ids] + prepared.positions[offset]  # (B, D)
    layers, logits_layer = prepared.layers, prepared.logits
    new_cache, cross_qk = [], []
    # a helper waits in C for this step, unless the decoding loop around it opened the team already
    # (sampling.step_team); without one-call blocks the products go through the pool, not a team
    with host_math.decoder_blas_threads(), host_team.enlisted(layers[0].one_call):
        for w, layer_cache in zip(layers, kv_cache):
            x, self_kv, cross_q = _block(w, x, layer_cache, limit)
            new_cache.append((self_kv, layer_cache[1]))  # (B, H, T + 1, Dh) each
            if scores:
                cross_qk.append(lazy_scores(cross_q, layer_cache[1][0]))  # (B, H, 1, n_ctx)
        logits = logits_layer(host_math.layer_norm(x, prepared.final_norm))  # (B, V)
    return (logits if host_logits else mx.array(logits[:, None, :])), new_cache, cross_qk


def _prepared_for_step(decoder: Any, kv_cache: Any) -> PreparedDecoder:
    """The host weights, checked against the model's at a window's first host step only.

    Why: the check reads every block's weights through MLX's module attributes, ~0.3 ms of a ~10 ms
    step here. A cache whose keys are already a HostKV comes from an earlier host step of the same
    decoding, which checked (and evaluated) everything the later steps read."""
    prepared: PreparedDecoder | None = decoder.host_weights
    if prepared is None or not isinstance(kv_cache[0][0][0], HostKV) or prepared.logits.int8 != decoder.host_int8:
        prepared_weights(decoder, int8=decoder.host_int8)
        mx.eval(kv_cache)  # the prefill's keys and values (HostKV leaves are skipped)
        prepared = decoder.host_weights
        assert prepared is not None  # just built
    return prepared


def prepare(decoder: Any) -> None:
    """Build the host weights now (int8 quantization takes a moment) instead of on the first step."""
    prepared_weights(decoder, int8=decoder.host_int8)
