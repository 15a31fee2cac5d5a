"""Logit filters: each one job, applied in order to the next-token logits before a token is chosen.

Every filter works on MLX arrays only (logits (B, V) and the tokens so far (B, T)), so filtering
adds ops to the step's graph and never waits for the device: the decoding loop can queue the next
step while this one runs. The host contributes only what it knows for free: the step index.

Each filter also has `apply_np`, the same rule on numpy arrays, for decoding on the CPU: there the
host is the device, and a step's MLX filter graph cost ~2 ms (measured here) against ~0.1 ms in
numpy. Tests hold the two versions equal. `apply_np_` is that rule written into the array given:
`apply_filters_np` copies the logits once, then every filter forbids tokens where they lie (setting
-inf, which is what adding the -inf mask does to finite logits) instead of adding a full-vocabulary
mask into a new array per filter (0.1-0.2 ms a step each for 5 beams here).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, Protocol

import mlx.core as mx
import numpy as np

from ..cpu import host_math

NEG_INF = float("-inf")


class LogitFilter(Protocol):
    def apply(self, logits: mx.array, tokens: mx.array, step: int) -> mx.array:
        """Return logits (B, V) with forbidden tokens at -inf. `tokens` (B, T) holds the prefix and
        everything sampled so far; `step` counts sampled tokens (0 at the first sample)."""
        ...

    def apply_np(self, logits: np.ndarray, tokens: np.ndarray, step: int) -> np.ndarray:
        """`apply` on numpy arrays; returns a new array."""
        ...

    def apply_np_(self, logits: np.ndarray, tokens: np.ndarray, step: int) -> None:
        """`apply_np` written into `logits` (float32, writable)."""
        ...


class _InPlaceNumpy:
    """`apply_np` as a copy then `apply_np_`, for filters whose numpy rule works in place."""

    def apply_np(self, logits: np.ndarray, tokens: np.ndarray, step: int) -> np.ndarray:
        out = np.array(logits, dtype=np.float32)
        self.apply_np_(out, tokens, step)
        return out

    def apply_np_(self, logits: np.ndarray, tokens: np.ndarray, step: int) -> None:
        raise NotImplementedError


def _vocab_ids(n_vocab: int, token_ids: Sequence[int]) -> np.ndarray:
    """The ids of `token_ids` inside the vocabulary, sorted, once each."""
    return np.array(sorted({t for t in token_ids if 0 <= t < n_vocab}), dtype=np.int64)


def _vocab_mask(n_vocab: int, token_ids: Sequence[int]) -> mx.array:
    """An additive mask (V,): 0 where allowed, -inf at `token_ids`."""
    mask = np.zeros(n_vocab, dtype=np.float32)
    mask[_vocab_ids(n_vocab, token_ids)] = NEG_INF
    return mx.array(mask)


class SuppressBlank(_InPlaceNumpy):
    """At the first sampled position, forbid a blank start (a lone space) and an immediate EOT."""

    def __init__(self, blank_ids: Sequence[int], n_vocab: int) -> None:
        self.mask = _vocab_mask(n_vocab, blank_ids)
        self.ids = _vocab_ids(n_vocab, blank_ids)

    def apply(self, logits: mx.array, tokens: mx.array, step: int) -> mx.array:
        return logits + self.mask if step == 0 else logits

    def apply_np_(self, logits: np.ndarray, tokens: np.ndarray, step: int) -> None:
        if step == 0:
            logits[:, self.ids] = NEG_INF


class SuppressTokens(_InPlaceNumpy):
    """Forbid a fixed set of tokens at every step (non-speech symbols, task and prompt markers)."""

    def __init__(self, token_ids: Sequence[int], n_vocab: int) -> None:
        self.token_ids = tuple(sorted(set(token_ids)))
        self.mask = _vocab_mask(n_vocab, self.token_ids)
        self.ids = _vocab_ids(n_vocab, self.token_ids)

    def apply(self, logits: mx.array, tokens: mx.array, step: int) -> mx.array:
        return logits + self.mask

    def apply_np_(self, logits: np.ndarray, tokens: np.ndarray, step: int) -> None:
        logits[:, self.ids] = NEG_INF


class RepetitionPenalty(_InPlaceNumpy):
    """Make every token already sampled in this window less likely (CTranslate2's rule, which
    faster-whisper exposes): a positive logit is divided by `penalty`, a negative one multiplied."""

    def __init__(self, penalty: float, sample_begin: int) -> None:
        self.penalty = penalty
        self.sample_begin = sample_begin

    def apply(self, logits: mx.array, tokens: mx.array, step: int) -> mx.array:
        if step == 0:
            return logits
        return mx.array(self.apply_np(np.array(logits), np.array(tokens), step))  # rare option: a host round trip

    def apply_np_(self, logits: np.ndarray, tokens: np.ndarray, step: int) -> None:
        for row, sampled in enumerate(tokens[:, self.sample_begin :]):
            seen = np.unique(sampled)
            values = logits[row, seen]
            logits[row, seen] = np.where(values < 0, values * self.penalty, values / self.penalty)


class NoRepeatNgram(_InPlaceNumpy):
    """Forbid any token that would repeat an n-gram already sampled in this window (CTranslate2's
    `no_repeat_ngram_size`: the window's sampled tokens only, timestamps included, never the prompt)."""

    def __init__(self, size: int, sample_begin: int) -> None:
        self.size = size
        self.sample_begin = sample_begin

    def banned(self, sampled: Sequence[int]) -> set[int]:
        """Tokens that followed earlier occurrences of the last `size - 1` sampled tokens."""
        n = self.size
        if len(sampled) < n:
            return set()
        tail = tuple(sampled[len(sampled) - n + 1 :])
        return {
            int(sampled[start + n - 1])
            for start in range(len(sampled) - n + 1)
            if tuple(sampled[start : start + n - 1]) == tail
        }

    def apply(self, logits: mx.array, tokens: mx.array, step: int) -> mx.array:
        if step < self.size:
            return logits
        return mx.array(self.apply_np(np.array(logits), np.array(tokens), step))  # rare option: a host round trip

    def apply_np_(self, logits: np.ndarray, tokens: np.ndarray, step: int) -> None:
        for row, sampled in enumerate(tokens[:, self.sample_begin :].tolist()):
            logits[row, sorted(self.banned(sampled))] = NEG_INF


class ApplyTimestampRules(_InPlaceNumpy):
    """Whisper's timestamp grammar, so every segment is `<|t0|> text <|t1|>` with t1 > t0 >= last t.

    - `<|notimestamps|>` is never sampled.
    - After two timestamps in a row (or the first one) a segment has opened: text follows.
    - After text then a timestamp a segment has closed: the next segment's opening timestamp
      (which may repeat the closing time) or EOT follows.
    - Timestamps never decrease, and a segment's end is strictly after its start.
    - The first sampled token is a timestamp no later than `max_initial_timestamp_index`.
    - If the timestamps together are likelier than the likeliest text token, sample a timestamp.
    """

    def __init__(
        self,
        *,
        eot: int,
        no_timestamps: int,
        timestamp_begin: int,
        n_vocab: int,
        sample_begin: int,
        max_initial_timestamp_index: int | None,
    ) -> None:
        self.eot = eot
        self.timestamp_begin = timestamp_begin
        self.n_vocab = n_vocab
        self.sample_begin = sample_begin
        self.max_initial_timestamp_index = max_initial_timestamp_index
        self.no_timestamps = no_timestamps
        self.no_timestamps_mask = _vocab_mask(n_vocab, [no_timestamps])
        self.vocab_ids = mx.arange(n_vocab, dtype=mx.int32)[None]  # (1, V)
        first = np.zeros(n_vocab, dtype=np.float32)  # the first token: a timestamp, early enough
        first[:timestamp_begin] = NEG_INF
        if max_initial_timestamp_index is not None:
            first[timestamp_begin + max_initial_timestamp_index + 1 :] = NEG_INF
        self.first_mask = mx.array(first)
        self._masked = _compiled_grammar_mask(timestamp_begin)  # fused: fewer passes over V

    def apply(self, logits: mx.array, tokens: mx.array, step: int) -> mx.array:
        if step == 0:
            return logits + self.first_mask  # every text token is forbidden: nothing to prefer
        text_below, ts_below = self._grammar_limits(tokens, step)
        return self._masked(logits, self.no_timestamps_mask, self.vocab_ids, text_below, ts_below)

    def apply_np_(self, logits: np.ndarray, tokens: np.ndarray, step: int) -> None:
        ts_begin = self.timestamp_begin
        if step == 0:  # `first_mask` as slices
            logits[:, :ts_begin] = NEG_INF
            if self.max_initial_timestamp_index is not None:
                logits[:, ts_begin + self.max_initial_timestamp_index + 1 :] = NEG_INF
            return
        text_below, ts_below = self._grammar_limits_np(tokens, step)
        if 0 <= self.no_timestamps < self.n_vocab:
            logits[:, self.no_timestamps] = NEG_INF
        for row in range(logits.shape[0]):  # forbidden ranges as slices: no (B, V) comparison arrays
            logits[row, : text_below[row]] = NEG_INF
            logits[row, ts_begin : max(ts_begin, ts_below[row])] = NEG_INF
        stamps = logits[:, ts_begin:]
        ts_mass = host_math.log_normalizers(stamps, stamps.max(axis=-1))  # our C kernel in one call where built
        prefer = ts_mass > logits[:, :ts_begin].max(axis=-1)
        if prefer.any():
            logits[prefer, :ts_begin] = NEG_INF

    def _grammar_limits_np(self, tokens: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray]:
        """`_grammar_limits` on numpy: per row (B,) text and timestamp bounds."""
        if tokens.shape[0] == 1:
            return self._one_row_limits(tokens[0, self.sample_begin :].tolist(), step)
        ts_begin = self.timestamp_begin
        sampled = tokens[:, self.sample_begin :]
        is_ts = sampled >= ts_begin
        last_ts = is_ts[:, -1]
        penult_ts = is_ts[:, -2] if step >= 2 else np.ones_like(last_ts)
        after_pair, after_close = last_ts & penult_ts, last_ts & ~penult_ts
        text_below = np.where(after_close, self.eot, 0)
        latest = np.where(is_ts, sampled, -1).max(axis=1)
        floor = np.where(latest >= 0, np.where(after_close, latest, latest + 1), 0)
        return text_below, np.maximum(np.where(after_pair, self.n_vocab, 0), floor)

    def _one_row_limits(self, sampled: list[int], step: int) -> tuple[np.ndarray, np.ndarray]:
        """`_grammar_limits_np` of one row in plain Python: greedy decoding's every step, where the
        numpy version's dozen calls on a few hundred tokens took ~40 us a step in the loop."""
        ts_begin = self.timestamp_begin
        last_ts = sampled[-1] >= ts_begin
        penult_ts = sampled[-2] >= ts_begin if step >= 2 else True
        after_close = last_ts and not penult_ts
        latest = max((t for t in sampled if t >= ts_begin), default=-1)
        floor = (latest if after_close else latest + 1) if latest >= 0 else 0
        ts_below = max(self.n_vocab if last_ts and penult_ts else 0, floor)
        return np.array([self.eot if after_close else 0]), np.array([ts_below])

    def _grammar_limits(self, tokens: mx.array, step: int) -> tuple[mx.array, mx.array]:
        """Per row (B, 1): text ids below `text_below` and timestamp ids below `ts_below` are forbidden."""
        zero = mx.zeros((tokens.shape[0], 1), dtype=mx.int32)
        ts_begin = self.timestamp_begin
        sampled = tokens[:, self.sample_begin :]  # (B, step)
        is_ts = sampled >= ts_begin
        last_ts = is_ts[:, -1:]
        penult_ts = is_ts[:, -2:-1] if step >= 2 else mx.ones_like(last_ts)
        after_pair = last_ts & penult_ts  # a segment just opened: its text comes next
        after_close = last_ts & ~penult_ts  # a segment just closed: a timestamp or EOT next
        text_below = mx.where(after_close, self.eot, zero)
        ts_below = mx.where(after_pair, self.n_vocab, zero)
        # timestamps never go back; inside a segment the closing one must be later than the opening
        latest = mx.max(mx.where(is_ts, sampled, -1), axis=1, keepdims=True)  # (B, 1)
        floor = mx.where(after_close, latest, latest + 1)
        floor = mx.where(latest >= 0, floor, zero)
        ts_below = mx.maximum(ts_below, floor)
        return text_below.astype(mx.int32), ts_below.astype(mx.int32)


@functools.lru_cache(maxsize=8)
def _compiled_grammar_mask(ts_begin: int) -> Any:
    """A compiled masking step for a vocabulary whose timestamps start at `ts_begin` (compiled once
    per vocabulary, not once per window)."""

    def grammar_mask(
        logits: mx.array,
        base_mask: mx.array,
        ids: mx.array,
        text_below: mx.array,
        ts_below: mx.array,
    ) -> mx.array:
        # Forbid text ids below `text_below` and timestamp ids below `ts_below` (per row, (B, 1)).
        logits = logits + base_mask
        forbid = (ids < text_below) | ((ids >= ts_begin) & (ids < ts_below))  # (B, V)
        logits = mx.where(forbid, NEG_INF, logits)
        # If log P(any timestamp) > log P(best text token), forbid text. Both share the softmax's
        # normalizer, so it cancels and only the ~1500 timestamp logits need an exp.
        ts_mass = mx.logsumexp(logits[:, ts_begin:], axis=-1, keepdims=True)  # (B, 1)
        best_text = mx.max(logits[:, :ts_begin], axis=-1, keepdims=True)  # (B, 1)
        return mx.where((ts_mass > best_text) & (ids < ts_begin), NEG_INF, logits)

    return mx.compile(grammar_mask)


def apply_filters(filters: Sequence[LogitFilter], logits: mx.array, tokens: mx.array, step: int) -> mx.array:
    for f in filters:
        logits = f.apply(logits, tokens, step)
    return logits


def apply_filters_np(
    filters: Sequence[LogitFilter], logits: np.ndarray, tokens: np.ndarray, step: int, *, in_place: bool = False
) -> np.ndarray:
    """The filters' numpy rules on one float32 copy of `logits` (often a view of an MLX array's
    memory, which stays as it was), or on `logits` itself with `in_place` (the caller's own float32
    array, as `sampling.host_step` returns)."""
    out = logits if in_place else np.array(logits, dtype=np.float32)
    for f in filters:
        f.apply_np_(out, tokens, step)
    return out
