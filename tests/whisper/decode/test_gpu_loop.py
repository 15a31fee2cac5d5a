"""The device-resident greedy loop (whisper/gpu_loop.py) picks the tokens the host loop picks.

Run on the CPU: `gpu_loop.greedy` (the filters as device ops, the choice, log-prob sums and EOT
test in one compiled function per token, a read-back every few tokens) against
`sampling.sample_tokens` with the dynamic step, on a tiny random model with the product's filters
(timestamp grammar included) and on real tiny.en weights with jfk.wav.
"""

from __future__ import annotations

from dataclasses import replace

import mlx.core as mx
import numpy as np
import pytest
from decode_helpers import JFK, tiny_random_model

from mlx_audio_coreml.whisper.decoding import DecodingOptions, DecodingTask
from mlx_audio_coreml.whisper.device_filters import device_rules
from mlx_audio_coreml.whisper.gpu_loop import decode_tokens, greedy
from mlx_audio_coreml.whisper.gpu_step import StaticDecoderStep
from mlx_audio_coreml.whisper.logit_filters import NoRepeatNgram, SuppressTokens
from mlx_audio_coreml.whisper.sampling import DecoderStep, sample_tokens
from mlx_audio_coreml.whisper.static_step import LAYOUT, StepLayout


def both_loops(
    model, features, task: DecodingTask, *, n_steps: int, eot: int, read_every: int = 3, layout: StepLayout = LAYOUT
) -> tuple:
    """(host tokens, host sums), (device tokens, device sums) for the task's prompt and filters."""
    batch = features.shape[0]
    prefix = mx.array(np.tile(np.array(task.initial_tokens, dtype=np.int32), (batch, 1)))
    logits, cache, _ = model.decoder(prefix, features)
    last = logits[:, -1, :]
    want = sample_tokens(
        DecoderStep(model, features), last, cache, prefix, task.filters, temperature=0.0, eot=eot, n_steps=n_steps
    )
    rules = device_rules(task.filters, model.dims.n_vocab)
    assert rules is not None
    step = StaticDecoderStep(model, features)
    got = greedy(step, last, cache, prefix, rules, eot=eot, n_steps=n_steps, read_every=read_every, layout=layout)
    return want, got


def features_for(model, batch: int, seed: int) -> mx.array:
    rng = np.random.default_rng(seed)
    dims = model.dims
    return mx.array(rng.standard_normal((batch, dims.n_audio_ctx, dims.n_audio_state)).astype(np.float32))


@pytest.mark.parametrize("without_timestamps", [False, True])
@pytest.mark.parametrize("batch", [1, 3])
def test_device_loop_picks_the_host_loops_tokens_with_the_product_filters(
    fake_tokenizer, without_timestamps: bool, batch: int
) -> None:
    model = tiny_random_model(seed=4)
    task = DecodingTask(model, fake_tokenizer, DecodingOptions(without_timestamps=without_timestamps))
    features = features_for(model, batch, seed=5)
    (want, want_sums), (got, got_sums) = both_loops(model, features, task, n_steps=40, eot=-1)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(got_sums, want_sums, rtol=1e-4, atol=1e-3)
    if not without_timestamps:  # the grammar was exercised: timestamps and text both chosen
        sampled = want[:, task.sample_begin :]
        assert (sampled >= fake_tokenizer.timestamp_begin).any() and (sampled < fake_tokenizer.eot).any()


@pytest.mark.parametrize(
    ("batch", "layout"),
    [
        (6, StepLayout(select_write_rows=4, span_rows=4, span_quantum=8)),  # slice_update writes, caches of 8, 16, ...
        (2, StepLayout(select_write_rows=0, span_rows=0, span_quantum=16)),  # the same at 2 rows
        (6, StepLayout(span_rows=0, span_quantum=8)),  # select writes into caches grown by spans of 8 positions
        (2, StepLayout(cross="explicit")),  # audio attention as products and a softmax
        (6, StepLayout(span_quantum=0, cross="explicit")),  # the whole cache, slice_update writes
        (2, StepLayout(audio_pad=7)),  # audio keys/values padded (32 -> 35 positions), a slice read
        (6, StepLayout(audio_pad=256, cross="explicit")),
    ],
)
def test_every_cache_layout_picks_the_host_loops_tokens(fake_tokenizer, batch: int, layout: StepLayout) -> None:
    model = tiny_random_model(seed=4)
    task = DecodingTask(model, fake_tokenizer, DecodingOptions())
    features = features_for(model, batch, seed=5)
    (want, want_sums), (got, got_sums) = both_loops(model, features, task, n_steps=40, eot=-1, layout=layout)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(got_sums, want_sums, rtol=1e-4, atol=1e-3)


def test_spans_cover_the_written_positions_and_stop_at_the_capacity() -> None:
    layout = StepLayout(span_rows=4, span_quantum=64)
    assert layout.span(4, 10, 448) == 448, "up to span_rows rows the whole cache is used"
    assert [layout.span(24, n, 448) for n in (1, 64, 65, 400, 448)] == [64, 64, 128, 448, 448]
    assert StepLayout(span_quantum=0).span(24, 10, 448) == 448
    assert len({replace(LAYOUT, span_rows=0).span(24, n, 448) for n in range(1, 449)}) <= 4, "each a compiled graph"


def test_the_loop_stops_a_read_back_after_every_row_has_ended(fake_tokenizer) -> None:
    model = tiny_random_model(seed=4)
    task = DecodingTask(model, fake_tokenizer, DecodingOptions())
    features = features_for(model, 4, seed=11)[:3]  # these rows choose a timestamp, then token 0 over and over
    (want, want_sums), (got, got_sums) = both_loops(model, features, task, n_steps=30, eot=0, read_every=4)
    assert want.shape[1] == task.sample_begin + 2, "token 0 stands in for EOT: every row ends at its second token"
    np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(got_sums, want_sums, rtol=1e-4, atol=1e-3)


def test_filters_that_need_the_host_keep_the_host_loop(fake_tokenizer) -> None:
    model = tiny_random_model(seed=4)
    assert device_rules([NoRepeatNgram(3, 1)], model.dims.n_vocab) is None
    assert device_rules([SuppressTokens([1], model.dims.n_vocab)], model.dims.n_vocab) is not None
    task = DecodingTask(model, fake_tokenizer, replace(DecodingOptions(), no_repeat_ngram_size=3))
    features = features_for(model, 1, seed=2)
    prefix = mx.array([task.initial_tokens], dtype=mx.int32)
    logits, cache, _ = model.decoder(prefix, features)
    step = StaticDecoderStep(model, features)
    tokens, _ = decode_tokens(step, logits[:, -1, :], cache, prefix, task.filters, temperature=0.0, eot=-1, n_steps=5)
    assert tokens.shape == (1, task.sample_begin + 5)


def test_device_loop_equals_the_host_loop_on_real_tiny_en_speech(tiny_en_bundle) -> None:
    """Two windows that end at different tokens: jfk.wav whole and its first 4 s."""
    from mlx_audio_coreml.whisper.audio import pad_or_trim
    from mlx_audio_coreml.whisper.mel import log_mel_spectrogram

    bundle = tiny_en_bundle
    mel = pad_or_trim(log_mel_spectrogram(str(JFK), n_mels=bundle.dims.n_mels), 3000)  # (n_mels, 3000)
    short = mx.where(mx.arange(3000) < 400, mel, mel.min())  # the first 4 s, then near-silence
    features = bundle.model.embed_audio(mx.stack([mel.T, short.T]))
    task = DecodingTask(bundle.model, bundle.tokenizer, DecodingOptions(), bundle.config)
    eot = bundle.tokenizer.eot
    (want, want_sums), (got, got_sums) = both_loops(
        bundle.model, features, task, n_steps=task.sample_len, eot=eot, read_every=8
    )
    np.testing.assert_array_equal(got, want)
    # MLX's CPU exp is an approximation (logsumexp of a 51864-token row off by ~1e-4): sums drift
    np.testing.assert_allclose(got_sums, want_sums, rtol=2e-3)
    ends = [list(row[task.sample_begin :]).index(eot) for row in want]
    assert ends[1] < ends[0], "the short window ends first, and waits for the long one"
    text = bundle.tokenizer.decode([t for t in want[0, task.sample_begin :] if t < eot])
    assert "ask not what your country can do for you" in text.lower()


def test_batched_rows_take_the_device_loop_on_a_gpu_and_decode_the_same(fake_tokenizer, monkeypatch) -> None:
    from mlx_audio_coreml.whisper import gpu_step
    from mlx_audio_coreml.whisper.batch_decode import decode_rows

    model = tiny_random_model(seed=4)
    features = features_for(model, 3, seed=10)
    options = DecodingOptions(sample_len=20)
    want = decode_rows(model, fake_tokenizer, features, options)
    calls = []
    monkeypatch.setattr(gpu_step, "applies", lambda: calls.append(1) or True)  # as on a GPU
    got = decode_rows(model, fake_tokenizer, features, options)
    assert calls, "the device loop was not asked"
    assert [r.tokens for r in got] == [r.tokens for r in want]
    np.testing.assert_allclose([r.sum_logprob for r in got], [r.sum_logprob for r in want], rtol=1e-4, atol=1e-3)


def test_float16_logits_choose_what_the_host_loop_chooses_from_the_same_step(fake_tokenizer) -> None:
    """In float16 the token function takes the step's float16 logits and promotes them in its mask add."""
    model = tiny_random_model(seed=4)
    model.set_dtype(mx.float16)
    task = DecodingTask(model, fake_tokenizer, DecodingOptions())
    features = features_for(model, 2, seed=5).astype(mx.float16)
    prefix = mx.array(np.tile(np.array(task.initial_tokens, dtype=np.int32), (2, 1)))
    logits, cache, _ = model.decoder(prefix, features)
    last = logits[:, -1, :].astype(mx.float32)
    step = StaticDecoderStep(model, features)
    want, want_sums = sample_tokens(step, last, cache, prefix, task.filters, temperature=0.0, eot=-1, n_steps=30)
    rules = device_rules(task.filters, model.dims.n_vocab)
    assert rules is not None
    got, got_sums = greedy(step, last, cache, prefix, rules, eot=-1, n_steps=30, read_every=4)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(got_sums, want_sums, rtol=1e-3, atol=1e-2)


def test_the_pipelined_loop_reads_back_log_probs_not_logit_rows(fake_tokenizer, monkeypatch) -> None:
    """sample_tokens as on a GPU (pipelined, log-probs taken on the device) sums what the host loop sums."""
    from mlx_audio_coreml.whisper import sampling

    model = tiny_random_model(seed=4)
    task = DecodingTask(model, fake_tokenizer, DecodingOptions())
    features = features_for(model, 2, seed=5)
    prefix = mx.array(np.tile(np.array(task.initial_tokens, dtype=np.int32), (2, 1)))
    logits, cache, _ = model.decoder(prefix, features)
    step = DecoderStep(model, features)
    args = dict(temperature=0.0, eot=-1, n_steps=12)
    want, want_sums = sample_tokens(step, logits[:, -1, :], cache, prefix, task.filters, **args)
    monkeypatch.setattr(sampling, "pipelining_pays", lambda: True)
    monkeypatch.setattr(sampling, "logprobs_on_device", lambda: True)

    def no_host_rows(*_):
        raise AssertionError("a (B, V) row was read back for the host's log-probs")

    monkeypatch.setattr(sampling, "chosen_logprobs", no_host_rows)
    got, got_sums = sample_tokens(step, logits[:, -1, :], cache, prefix, task.filters, **args)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(got_sums, want_sums, rtol=2e-3)


@pytest.mark.parametrize("beam_size", [1, 5])
def test_a_transcript_through_the_gpu_path_equals_the_cpu_transcript(tiny_en, monkeypatch, beam_size: int) -> None:
    """The product path as on a GPU (static step; greedy through `gpu_loop`), run on the CPU, end to end."""
    from mlx_audio_coreml.whisper import gpu_loop, gpu_step

    def transcript() -> list[tuple[float, float, str]]:
        segments, _ = tiny_en.transcribe(str(JFK), beam_size=beam_size)
        return [(s.start, s.end, s.text) for s in segments]

    want = transcript()
    used = []
    monkeypatch.setattr(gpu_step, "applies", lambda: True)
    monkeypatch.setattr(gpu_loop, "pipelining_pays", lambda: True)
    real_greedy = gpu_loop.greedy
    monkeypatch.setattr(gpu_loop, "greedy", lambda *a, **k: used.append(1) or real_greedy(*a, **k))
    assert transcript() == want
    assert bool(used) == (beam_size == 1), "greedy takes the device loop, beam search its own"
