"""From duration logits to frames: durations per token, the token-to-frame alignment, and the expansion.

hexgrad: `durations = round(sigmoid(logits).sum(-1) / speed).clamp(min=1)`, then a one-hot
alignment `(T, F)` with `F = sum(durations)` and features expanded as `x @ alignment`. Each frame
column holds a single 1, so the product equals gathering the token of each frame; `expand` does
that gather (exact, and without the `(T, F)` matrix), `alignment_matrix` builds the matrix itself.
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np


def durations_from_logits(logits: mx.array, speed: float) -> mx.array:
    """`(B, T, max_dur)` logits of one row -> `(T,)` int32 frames per token, each at least 1.

    `mx.round` rounds halves to even, as `torch.round` does.
    """
    frames = mx.sigmoid(logits).sum(axis=-1) / speed
    return mx.maximum(mx.round(frames), 1).astype(mx.int32).reshape(-1)


def frame_tokens(durations: mx.array) -> mx.array:
    """`(T,)` durations -> `(F,)` int32: the token index of each frame (`repeat_interleave(arange(T), d)`)."""
    counts = np.asarray(durations, dtype=np.int64)
    return mx.array(np.repeat(np.arange(counts.shape[0], dtype=np.int32), counts))


def alignment_matrix(durations: mx.array) -> mx.array:
    """hexgrad's `pred_aln_trg` without its batch axis: `(T, F)` float32, one 1 per frame column."""
    tokens = frame_tokens(durations)
    return (mx.arange(durations.shape[0])[:, None] == tokens[None, :]).astype(mx.float32)


def expand(x: mx.array, tokens: mx.array) -> mx.array:
    """Token features `(B, T, C)` -> frame features `(B, F, C)`, given `frame_tokens(durations)`."""
    return mx.take(x, tokens, axis=1)
