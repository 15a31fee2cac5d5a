"""The default logit filters as device ops that choose the next token without the host.

`logit_filters` applies each filter to a (B, V) row and the host then reads the row back. For a
loop that never waits on the device (`gpu_loop`), the rules are restated here on device state:
- every additive mask (suppressed tokens, a blank start, `<|notimestamps|>`, the first token's
  timestamp window) is summed once into one constant row per kind of step (the first, the rest);
- the timestamp grammar's memory of the tokens so far is three small arrays per row (was the last
  token a timestamp, was the one before, the latest timestamp), updated with each choice, so no
  step reads the growing token history;
- the grammar works on the text and timestamp slices separately, so the full (B, V) row is never
  rewritten: one pass adds the mask, then reductions find each slice's best token, its value and
  its log-normalizer; the host never reads a (B, V) row (in the old loop the kernel writing the
  row that was read back took ~0.3 ms on an H100, likely moving host-visible memory back: see
  `sampling._account`).
The choice equals `argmax` of `apply_filters` (the first best index on ties), and the log-prob is
that of `sampling.chosen_logprobs` (in float32 on the device; float64 on the host).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import mlx.core as mx

from .logit_filters import ApplyTimestampRules, LogitFilter, SuppressBlank, SuppressTokens

NEG_INF = float("-inf")


@dataclass(frozen=True)
class Grammar:
    """The timestamp rules' constants (`logit_filters.ApplyTimestampRules`), hashable: compiled
    token functions are kept per grammar."""

    eot: int
    timestamp_begin: int
    n_vocab: int

    @property
    def text_ids(self) -> mx.array:
        return _ids(0, self.timestamp_begin)

    @property
    def timestamp_ids(self) -> mx.array:
        return _ids(self.timestamp_begin, self.n_vocab)


@functools.lru_cache(maxsize=16)
def _ids(start: int, stop: int) -> mx.array:
    """(1, stop - start) token ids, made and evaluated once: a constant, not an Arange per token."""
    ids = mx.arange(start, stop, dtype=mx.int32)[None]
    mx.eval(ids)
    return ids


@dataclass(frozen=True)
class DeviceRules:
    """Additive masks (V,) for the first step and the later ones, and the grammar (None: none)."""

    first_mask: mx.array
    mask: mx.array
    grammar: Grammar | None


@dataclass(frozen=True)
class RowState:
    """Per row (B, 1): finished, last two tokens timestamps?, latest timestamp (-1: none), log-prob
    sum. (B, 1), not (B,): reductions keep their axis, so no squeeze or expand nodes per token."""

    finished: mx.array
    last_ts: mx.array
    penult_ts: mx.array
    latest: mx.array
    sums: mx.array

    @staticmethod
    def start(batch: int) -> RowState:
        """Before the first choice. `last_ts` True makes step 1's "two timestamps in a row" test read
        only the first token, as `ApplyTimestampRules` does before two tokens exist."""
        no = mx.zeros((batch, 1), dtype=mx.bool_)
        yes, none = mx.ones((batch, 1), dtype=mx.bool_), mx.full((batch, 1), -1, mx.int32)
        return RowState(no, yes, no, none, mx.zeros((batch, 1)))

    def arrays(self) -> tuple[mx.array, ...]:
        return self.finished, self.last_ts, self.penult_ts, self.latest, self.sums


def device_rules(filters: Sequence[LogitFilter], n_vocab: int) -> DeviceRules | None:
    """The filters as `DeviceRules`, or None if one of them needs the host (repetition rules)."""
    first = mx.zeros((n_vocab,))
    later = mx.zeros((n_vocab,))
    grammar = None
    for f in filters:
        if grammar is not None:  # the grammar's timestamp-vs-text test must come last
            return None
        if isinstance(f, SuppressBlank):
            first = first + f.mask
        elif isinstance(f, SuppressTokens):
            first, later = first + f.mask, later + f.mask
        elif isinstance(f, ApplyTimestampRules):
            first, later = first + f.first_mask, later + f.no_timestamps_mask
            grammar = Grammar(f.eot, f.timestamp_begin, f.n_vocab)
        else:
            return None
    mx.eval(first, later)
    return DeviceRules(first, later, grammar)


def _best(row: mx.array) -> tuple[mx.array, mx.array, mx.array]:
    """(index, value, logsumexp) per row of (B, N), each (B, 1)."""
    index = mx.argmax(row, axis=-1, keepdims=True)
    value = mx.take_along_axis(row, index, axis=-1)
    return index.astype(mx.int32), value, mx.logsumexp(row, axis=-1, keepdims=True)


def _choose_plain(logits: mx.array, mask: mx.array) -> tuple[mx.array, mx.array]:
    """(token, log-prob) of argmax(logits + mask) per row."""
    index, value, norm = _best(logits + mask)
    return index, value - norm


def _choose_grammar(logits: mx.array, mask: mx.array, g: Grammar, state: RowState) -> tuple[mx.array, mx.array]:
    """(token, log-prob) under the timestamp grammar after the first step (`ApplyTimestampRules.apply`)."""
    ts_begin = g.timestamp_begin
    x = logits + mask
    text, stamps = x[:, :ts_begin], x[:, ts_begin:]
    after_pair = state.last_ts & state.penult_ts  # a segment just opened: its text comes next
    after_close = state.last_ts & ~state.penult_ts  # a segment just closed: a timestamp or EOT next
    text_below = mx.where(after_close, g.eot, 0)
    floor = mx.where(state.latest >= 0, mx.where(after_close, state.latest, state.latest + 1), 0)
    ts_below = mx.maximum(mx.where(after_pair, g.n_vocab, 0), floor)  # timestamps never go back
    text = mx.where(g.text_ids < text_below, NEG_INF, text)
    stamps = mx.where(g.timestamp_ids < ts_below, NEG_INF, stamps)
    t_index, t_value, t_norm = _best(text)
    s_index, s_value, s_norm = _best(stamps)
    text_allowed = ~(s_norm > t_value)  # timestamps likelier together than the best text: no text
    pick_text = text_allowed & (t_value >= s_value)  # argmax's first index wins ties: text ids are lower
    token = mx.where(pick_text, t_index, s_index + ts_begin)
    norm = mx.where(text_allowed, mx.logaddexp(t_norm, s_norm), s_norm)
    return token, mx.where(pick_text, t_value, s_value) - norm


def choose(
    logits: mx.array, rules: DeviceRules, state: RowState, *, first: bool, eot: int
) -> tuple[mx.array, RowState]:
    """The greedy choice of one step (B, 1) int32 and the rows' state after it. `logits` may be
    float16: adding the float32 mask promotes them exactly, in the same kernel. A finished row emits
    `eot` and adds nothing to its sum (the loop's `eot`; the grammar has its own)."""
    g = rules.grammar
    if first or g is None:
        token, logprob = _choose_plain(logits, rules.first_mask if first else rules.mask)
    else:
        token, logprob = _choose_grammar(logits, rules.mask, g, state)
    token = mx.where(state.finished, eot, token)
    sums = state.sums + mx.where(state.finished, 0.0, logprob)
    finished = state.finished | (token == eot)
    if g is None:
        return token, RowState(finished, state.last_ts, state.penult_ts, state.latest, sums)
    is_ts = token >= g.timestamp_begin
    latest = mx.maximum(state.latest, mx.where(is_ts, token, -1))
    return token, RowState(finished, is_ts, state.last_ts, latest, sums)
