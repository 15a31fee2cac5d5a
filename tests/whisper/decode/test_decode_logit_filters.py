"""Each logit filter on hand-made logits over the fake tokenizer's 200-token vocabulary."""

from __future__ import annotations

import math

import mlx.core as mx
import numpy as np
import pytest
from decode_helpers import FAKE_VOCAB, FakeTokenizer

from mlx_audio_coreml.cpu import native_kernels
from mlx_audio_coreml.whisper.decoding import DecodingOptions, DecodingTask
from mlx_audio_coreml.whisper.logit_filters import (
    ApplyTimestampRules,
    SuppressBlank,
    SuppressTokens,
    apply_filters,
    apply_filters_np,
)

T = FakeTokenizer()
TS = T.timestamp_begin
SAMPLE_BEGIN = 1  # prefix: <|startoftranscript|>


def flat_logits(batch: int = 1) -> mx.array:
    return mx.zeros((batch, FAKE_VOCAB))


def text_heavy_logits(batch: int = 1) -> mx.array:
    """Text tokens far likelier than timestamps, so the timestamp-preference rule stays out of the way."""
    logits = np.zeros((batch, FAKE_VOCAB), dtype=np.float32)
    logits[:, : T.eot + 1] = 10.0  # text and EOT
    return mx.array(logits)


def forbidden(logits: mx.array, row: int = 0) -> set[int]:
    values = np.array(logits)[row]
    return {int(i) for i in np.flatnonzero(np.isneginf(values))}


def history(*sampled: int) -> mx.array:
    return mx.array([[T.sot, *sampled]], dtype=mx.int32)


def rules(max_initial: int | None = 50) -> ApplyTimestampRules:
    return ApplyTimestampRules(
        eot=T.eot, no_timestamps=T.no_timestamps, timestamp_begin=TS, n_vocab=FAKE_VOCAB,
        sample_begin=SAMPLE_BEGIN, max_initial_timestamp_index=max_initial,
    )  # fmt: skip


def test_suppress_blank_forbids_space_and_eot_only_at_first_step():
    f = SuppressBlank([1, T.eot], FAKE_VOCAB)
    assert forbidden(f.apply(flat_logits(), history(), 0)) == {1, T.eot}
    assert forbidden(f.apply(flat_logits(), history(5), 1)) == set()


def test_suppress_tokens_forbids_listed_ids_at_every_step():
    f = SuppressTokens([3, 7, 7, 150, 999], FAKE_VOCAB)  # duplicates and out-of-vocabulary ids are ignored
    for step in (0, 3):
        out = f.apply(flat_logits(), history(*([5] * step)), step)
        assert forbidden(out) == {3, 7, 150}
        assert np.array(out)[0, 5] == 0.0  # others untouched


def test_first_token_is_a_timestamp_no_later_than_max_initial():
    out = rules(max_initial=10).apply(flat_logits(), history(), 0)
    allowed = set(range(FAKE_VOCAB)) - forbidden(out)
    assert allowed == set(range(TS, TS + 11))


def test_first_token_any_timestamp_without_max_initial():
    out = rules(max_initial=None).apply(flat_logits(), history(), 0)
    assert set(range(FAKE_VOCAB)) - forbidden(out) == set(range(TS, FAKE_VOCAB))


def test_after_opening_timestamp_text_follows():
    out = rules().apply(text_heavy_logits(), history(TS + 5), 1)  # <|0.10|>: a segment opened
    bad = forbidden(out)
    assert set(range(TS, FAKE_VOCAB)) <= bad  # no timestamp right after the opening one
    assert 5 not in bad and T.eot not in bad
    assert T.no_timestamps in bad


def test_after_closing_timestamp_no_text_but_eot_or_next_start():
    out = rules().apply(text_heavy_logits(), history(TS + 5, 7, 8, TS + 20), 4)
    bad = forbidden(out)
    assert set(range(0, T.eot)) <= bad  # no text right after a segment closed
    assert T.eot not in bad
    assert set(range(TS, TS + 20)) <= bad  # the next start is not earlier than the close...
    assert TS + 20 not in bad and TS + 21 not in bad  # ...but may equal it


def test_inside_a_segment_the_end_is_later_than_the_start():
    out = rules().apply(text_heavy_logits(), history(TS + 5, 7, 8), 3)
    bad = forbidden(out)
    assert set(range(TS, TS + 6)) <= bad  # <= start: a zero-length segment is not allowed
    assert TS + 6 not in bad and 9 not in bad and T.eot not in bad


def test_after_a_pair_timestamps_never_go_back():
    out = rules().apply(text_heavy_logits(), history(TS + 5, 7, TS + 30, TS + 30, 9), 5)
    bad = forbidden(out)
    assert set(range(TS, TS + 31)) <= bad
    assert TS + 31 not in bad


def test_timestamps_win_when_their_total_probability_beats_the_best_text_token():
    logits = np.full((2, FAKE_VOCAB), -10.0, dtype=np.float32)
    logits[:, 10] = 3.0  # best text token
    logits[0, TS + 40 : TS + 60] = 1.0  # row 0: 20 timestamps at e^1 each: total 20 e > e^3
    logits[1, TS + 40 : TS + 42] = 1.0  # row 1: only 2 timestamps at e^1: total 2 e < e^3
    tokens = mx.array([[T.sot, TS, 5], [T.sot, TS, 5]], dtype=mx.int32)
    out = rules().apply(mx.array(logits), tokens, 2)
    assert set(range(T.eot)) <= forbidden(out, 0)
    assert 10 not in forbidden(out, 1)
    assert 20 * math.e > math.exp(3) > 2 * math.e  # the arithmetic the test relies on


def test_rows_follow_their_own_history():
    tokens = mx.array([[T.sot, TS + 2, 4, 5], [T.sot, TS + 2, 4, TS + 9]], dtype=mx.int32)
    out = rules().apply(text_heavy_logits(2), tokens, 3)
    assert 4 not in forbidden(out, 0)  # row 0 is inside a segment: text allowed
    assert set(range(T.eot)) <= forbidden(out, 1)  # row 1 just closed its segment: no text


def test_task_suppresses_config_ids_and_control_tokens(tiny_model):
    task = DecodingTask(tiny_model, T, DecodingOptions(), config={"suppress_ids": [2, 9]})
    suppressed = set(task.suppressed_tokens())
    assert {2, 9, T.sot, T.sot_prev, T.sot_lm, T.transcribe, T.translate, T.no_speech} <= suppressed
    assert 3 not in suppressed  # the tokenizer's own list is used only without a config list
    task = DecodingTask(tiny_model, T, DecodingOptions(suppress_tokens="-1"))
    assert {2, 3} <= set(task.suppressed_tokens())
    task = DecodingTask(tiny_model, T, DecodingOptions(suppress_tokens=None))
    assert task.suppressed_tokens() == []


def test_without_timestamps_has_no_timestamp_rules(tiny_model):
    task = DecodingTask(tiny_model, T, DecodingOptions(without_timestamps=True))
    assert not any(isinstance(f, ApplyTimestampRules) for f in task.filters)
    assert task.initial_tokens == [T.sot, T.no_timestamps]


@pytest.mark.parametrize("seconds, index", [(1.0, 50), (0.5, 25), (0.0, 0)])
def test_max_initial_timestamp_is_converted_to_steps_of_20_ms(tiny_model, seconds, index):
    task = DecodingTask(tiny_model, T, DecodingOptions(max_initial_timestamp=seconds))
    rule = next(f for f in task.filters if isinstance(f, ApplyTimestampRules))
    assert rule.max_initial_timestamp_index == index


def _random_history(rng: np.random.Generator, rows: int, length: int) -> np.ndarray:
    """Rows of <|startoftranscript|> then text and timestamps in random order, some rising, some not."""
    sampled = np.where(
        rng.random((rows, length)) < 0.4,
        TS + rng.integers(0, 40, (rows, length)),
        rng.integers(0, T.eot, (rows, length)),
    )
    return np.concatenate([np.full((rows, 1), T.sot), sampled], axis=1).astype(np.int32)


@pytest.mark.parametrize("kernels", [True, False])  # the timestamps' logsumexp in our C kernel, or numpy
@pytest.mark.parametrize("rows", [1, 3])  # one row: the timestamp rules' plain-Python limits
@pytest.mark.parametrize("seed", range(6))
def test_numpy_filters_equal_the_mlx_filters(seed, rows, kernels, monkeypatch):
    """`apply_np` (greedy decoding on the CPU) forbids and keeps exactly what `apply` does."""
    if not kernels:
        monkeypatch.setattr(native_kernels, "available", lambda: False)
    rng = np.random.default_rng(seed)
    filters = [
        SuppressBlank([1, T.eot], FAKE_VOCAB),
        SuppressTokens([3, 7, T.no_speech], FAKE_VOCAB),
        rules(seed * 10 or None),
    ]
    for step in range(10):
        logits = (rng.standard_normal((rows, FAKE_VOCAB)) * 3).astype(np.float32)
        logits[:, TS:] += rng.uniform(-4, 4)  # timestamps sometimes outweigh the best text token
        tokens = _random_history(rng, rows, step)
        for f in filters:
            expected = np.array(f.apply(mx.array(logits), mx.array(tokens), step))
            np.testing.assert_array_equal(f.apply_np(logits, tokens, step), expected)


@pytest.mark.parametrize("seed", range(3))
def test_chained_numpy_filters_equal_the_mlx_chain_and_leave_their_input_alone(seed):
    """`apply_filters_np` copies the logits once and forbids in place: the same array as the MLX chain
    of full-vocabulary mask additions, and the caller's logits unchanged."""
    rng = np.random.default_rng(seed)
    filters = [SuppressBlank([1, T.eot], FAKE_VOCAB), SuppressTokens([3, 7, T.no_speech], FAKE_VOCAB), rules(50)]
    for step in range(6):
        logits = (rng.standard_normal((4, FAKE_VOCAB)) * 3).astype(np.float32)
        logits[:, TS:] += rng.uniform(-4, 4)
        logits[0, 5] = -np.inf  # already forbidden before the filters
        before = logits.copy()
        tokens = _random_history(rng, 4, step)
        expected = np.array(apply_filters(filters, mx.array(logits), mx.array(tokens), step))
        np.testing.assert_array_equal(apply_filters_np(filters, logits, tokens, step), expected)
        np.testing.assert_array_equal(logits, before)
