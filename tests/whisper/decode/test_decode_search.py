"""Greedy, beam search and sampling on a tiny random model: agreement, bookkeeping and the KV cache."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
from decode_helpers import FakeTokenizer

from mlx_audio_coreml.whisper.beam import BeamSearch
from mlx_audio_coreml.whisper.decoding import DecodingOptions, DecodingTask
from mlx_audio_coreml.whisper.logit_filters import apply_filters
from mlx_audio_coreml.whisper.sampling import DecoderStep, log_normalizers, repeat_rows, sample_tokens

T = FakeTokenizer()


class FullPrefixStep:
    """A decoder step without a KV cache: it re-runs the decoder over the whole sequence each time.
    Its "cache" is the token history (B, T), which beam search reorders like a real cache."""

    def __init__(self, model, audio_features):
        self.model = model
        self.audio_features = audio_features

    def __call__(self, new_tokens, history):
        full = mx.concatenate([history, new_tokens], axis=1)
        logits, _, _ = self.model.decoder(full, self.audio_features)
        return logits[:, -1, :], full

    def reorder(self, history, rows):
        return history[rows]


def start(task, model, features, group=1, cached=True):
    prefix = mx.array([task.initial_tokens] * features.shape[0], dtype=mx.int32)
    logits, cache, _ = model.decoder(prefix, features)
    step_features = mx.repeat(features, group, axis=0)
    if cached:
        return (
            DecoderStep(model, step_features),
            repeat_rows(logits[:, -1], group),
            repeat_rows(cache, group),
            repeat_rows(prefix, group),
        )
    return (
        FullPrefixStep(model, step_features),
        repeat_rows(logits[:, -1], group),
        repeat_rows(prefix, group),
        repeat_rows(prefix, group),
    )


def teacher_forced_logprob(model, features, task, sampled):
    """Sum of log P(token | prefix) under the task's filters, recomputing every prefix from scratch."""
    tokens = list(task.initial_tokens)
    total = 0.0
    for step, token in enumerate(sampled + [T.eot]):
        row = mx.array([tokens], dtype=mx.int32)
        logits = model.decoder(row, features)[0][:, -1, :]
        filtered = apply_filters(task.filters, logits, row, step)
        logprobs = filtered - mx.logsumexp(filtered, axis=-1, keepdims=True)
        total += float(logprobs[0, token])
        tokens.append(token)
    return total


def check_grammar(tokens):
    """The timestamp rules hold: a timestamp first, timestamps in order, never three in a row, and
    each segment's closing timestamp later than its opening one."""
    is_ts = [t >= T.timestamp_begin for t in tokens]
    assert tokens and is_ts[0]
    stamps = [t for t in tokens if t >= T.timestamp_begin]
    assert stamps == sorted(stamps)
    assert not any(a and b and c for a, b, c in zip(is_ts, is_ts[1:], is_ts[2:]))
    opening = None
    for token, ts in zip(tokens, is_ts):
        if ts and opening is None:
            opening = token
        elif ts:
            assert token > opening, tokens
            opening = None
        # text tokens leave the state as it is


@pytest.mark.parametrize("without_timestamps", [False, True])
def test_greedy_with_cache_equals_rerunning_the_full_prefix(tiny_model, audio_features, without_timestamps):
    task = DecodingTask(tiny_model, T, DecodingOptions(without_timestamps=without_timestamps, sample_len=24))
    results = []
    for cached in (True, False):
        step, logits, cache, prefix = start(task, tiny_model, audio_features, cached=cached)
        results.append(sample_tokens(step, logits, cache, prefix, task.filters, temperature=0.0, eot=T.eot, n_steps=24))
    (tokens_a, lp_a), (tokens_b, lp_b) = results
    np.testing.assert_array_equal(tokens_a, tokens_b)
    np.testing.assert_allclose(lp_a, lp_b, rtol=1e-4, atol=1e-4)


def test_beam_search_with_cache_equals_rerunning_the_full_prefix(tiny_model, audio_features):
    task = DecodingTask(tiny_model, T, DecodingOptions(beam_size=3, sample_len=16))
    outcomes = []
    for cached in (True, False):
        step, logits, cache, prefix = start(task, tiny_model, audio_features, group=3, cached=cached)
        outcomes.append(BeamSearch(3, T.eot).run(step, logits, cache, prefix, task.filters, n_audio=1, n_steps=16))
    (a,), (b,) = outcomes
    assert [tokens for tokens, _ in a] == [tokens for tokens, _ in b]
    np.testing.assert_allclose([s for _, s in a], [s for _, s in b], rtol=1e-4, atol=1e-4)


def test_beam_of_one_is_greedy(tiny_model, audio_features):
    greedy = DecodingTask(tiny_model, T, DecodingOptions(sample_len=20)).run(audio_features)[0]
    beam = DecodingTask(tiny_model, T, DecodingOptions(beam_size=1, sample_len=20)).run(audio_features)[0]
    assert beam.tokens == greedy.tokens
    assert beam.sum_logprob == pytest.approx(greedy.sum_logprob, abs=1e-3)


@pytest.mark.parametrize(
    "options",
    [
        DecodingOptions(sample_len=20),
        DecodingOptions(beam_size=4, sample_len=20),
        DecodingOptions(beam_size=3, patience=2.0, sample_len=20),
    ],
)
def test_reported_logprob_matches_teacher_forcing(tiny_model, audio_features, options):
    task = DecodingTask(tiny_model, T, options)
    result = task.run(audio_features)[0]
    check_grammar(list(result.tokens))
    if len(result.tokens) < options.sample_len:  # ended by EOT, whose log-prob is included
        expected = teacher_forced_logprob(tiny_model, audio_features, task, list(result.tokens))
        assert result.sum_logprob == pytest.approx(expected, abs=2e-3)
    assert result.avg_logprob == pytest.approx(result.sum_logprob / (len(result.tokens) + 1))


def test_beam_search_finds_a_sequence_at_least_as_likely_as_greedy_on_average(tiny_model):
    """Over several random windows, beam search's best length-normalized score is never below
    greedy's by much, and above it on average (a search that kept losing paths would fail)."""
    rng = np.random.default_rng(7)
    gains = []
    for _ in range(6):
        feats = mx.array(rng.standard_normal((1, 32, 32)).astype(np.float32))
        greedy = DecodingTask(tiny_model, T, DecodingOptions(sample_len=12)).run(feats)[0]
        beam = DecodingTask(tiny_model, T, DecodingOptions(beam_size=5, sample_len=12)).run(feats)[0]
        gains.append(beam.avg_logprob - greedy.avg_logprob)
    assert np.mean(gains) >= 0.0


def test_batched_windows_decode_like_single_ones(tiny_model):
    rng = np.random.default_rng(3)
    feats = mx.array(rng.standard_normal((2, 32, 32)).astype(np.float32))
    for options in (DecodingOptions(sample_len=12), DecodingOptions(beam_size=2, sample_len=12)):
        together = DecodingTask(tiny_model, T, options).run(feats)
        alone = [DecodingTask(tiny_model, T, options).run(feats[i : i + 1])[0] for i in range(2)]
        assert [r.tokens for r in together] == [r.tokens for r in alone]


def test_sampling_is_reproducible_with_a_seed_and_best_of_keeps_the_likeliest(tiny_model, audio_features):
    options = DecodingOptions(temperature=1.0, best_of=4, sample_len=12)
    task = DecodingTask(tiny_model, T, options)
    mx.random.seed(11)
    first = task.run(audio_features)[0]
    mx.random.seed(11)
    second = task.run(audio_features)[0]
    assert first.tokens == second.tokens
    check_grammar(list(first.tokens))
    # the 4 candidates: the kept one has the best mean log-prob among them
    step, logits, cache, prefix = start(task, tiny_model, audio_features, group=4)
    mx.random.seed(11)
    tokens, sums = sample_tokens(step, logits, cache, prefix, task.filters, temperature=1.0, eot=T.eot, n_steps=12)
    candidates = task._group_samples(tokens, sums, 1, 4)[0]
    best = max(candidates, key=lambda c: c[1] / max(len(c[0]), 1))
    assert first.tokens == tuple(best[0])


def test_no_speech_probability_is_read_at_the_start_of_transcript(tiny_model, audio_features):
    task = DecodingTask(tiny_model, T, DecodingOptions(prompt="w5 w6 w7", sample_len=4))
    assert task.initial_tokens[:4] == [T.sot_prev, 5, 6, 7]
    result = task.run(audio_features)[0]
    logits = tiny_model.decoder(mx.array([task.initial_tokens]), audio_features)[0]
    expected = float(mx.softmax(logits[0, task.sot_index], axis=-1)[T.no_speech])
    assert result.no_speech_prob == pytest.approx(expected, rel=1e-4)


def test_pipelined_and_step_by_step_loops_agree(tiny_model, audio_features, monkeypatch):
    """The GPU's queued loop and the CPU's step-by-step loop (forced here either way) pick the same
    tokens and add up the same log-probs."""
    from mlx_audio_coreml.whisper import sampling

    task = DecodingTask(tiny_model, T, DecodingOptions(sample_len=30))
    outcomes = []
    for pipelined in (True, False):
        monkeypatch.setattr(sampling, "pipelining_pays", lambda pipelined=pipelined: pipelined)
        step, logits, cache, prefix = start(task, tiny_model, audio_features)
        outcomes.append(
            sample_tokens(step, logits, cache, prefix, task.filters, temperature=0.0, eot=T.eot, n_steps=30)
        )
    np.testing.assert_array_equal(outcomes[0][0][:, : outcomes[1][0].shape[1]], outcomes[1][0])
    np.testing.assert_allclose(outcomes[0][1], outcomes[1][1], rtol=1e-6)


def test_log_normalizers_given_the_row_maxima_are_bitwise_those_it_finds():
    rng = np.random.default_rng(0)
    logits = (rng.standard_normal((4, 51864)) * 5).astype(np.float32)
    logits[1, rng.random(51864) < 0.9] = -np.inf
    logits[2] = -np.inf  # nothing allowed: -inf
    expected = log_normalizers(logits)
    np.testing.assert_array_equal(log_normalizers(logits, maxima=logits.max(axis=-1)), expected)
    assert np.isneginf(expected[2]) and np.isfinite(expected[[0, 1, 3]]).all()


def test_host_call_gives_the_steps_logits_as_a_numpy_block_of_their_own(tiny_model, audio_features):
    """`DecoderStep.host_call` (the CPU's host loops): the same logits as `__call__`, as a writable
    float32 (B, V) numpy array (the loop's filters write into it); through MLX's route too."""
    from mlx_audio_coreml.cpu import host_math

    task = DecodingTask(tiny_model, T, DecodingOptions(sample_len=4))
    token = mx.array([[5]], dtype=mx.int32)
    got = {}
    for name in ("__call__", "host_call"):
        step, _, cache, _ = start(task, tiny_model, audio_features)
        logits, _ = getattr(step, name)(token, cache)
        got[name] = logits
    assert isinstance(got["host_call"], np.ndarray) and got["host_call"].flags.writeable
    assert got["host_call"].dtype == np.float32 and got["host_call"].shape == (1, tiny_model.dims.n_vocab)
    np.testing.assert_array_equal(got["host_call"], np.array(got["__call__"]))
    with host_math.disabled():  # the MLX route: its (B, 1, V) logits, copied out
        step, _, cache, _ = start(task, tiny_model, audio_features)
        via_mlx, _ = step.host_call(token, cache)
    assert isinstance(via_mlx, np.ndarray) and via_mlx.flags.writeable
    np.testing.assert_allclose(via_mlx, got["host_call"], rtol=1e-4, atol=1e-4)
