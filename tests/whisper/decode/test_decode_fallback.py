"""Temperature fallback, seeded sampling and the loop guards, on synthetic results and the tiny
random model: what is retried, what is kept when every rung fails, and that runs repeat."""

from __future__ import annotations

import math

import mlx.core as mx
import numpy as np
import pytest
from decode_helpers import FAKE_VOCAB, FakeTokenizer

from mlx_audio_coreml.errors import InvalidOption
from mlx_audio_coreml.whisper.decoding import DecodingOptions, DecodingResult, DecodingTask, compression_ratio
from mlx_audio_coreml.whisper.fallback import decode_with_fallback, needs_fallback, rung_seed
from mlx_audio_coreml.whisper.logit_filters import NoRepeatNgram, RepetitionPenalty
from mlx_audio_coreml.whisper.transcribe_options import TranscribeOptions, fallback_temperatures, merge_options

T = FakeTokenizer()


def result(temperature, avg_logprob, ratio=1.5, no_speech=0.01, text="w1"):
    return DecodingResult((1,), text, "en", avg_logprob, avg_logprob * 2, no_speech, temperature, ratio)


def ladder(outcomes, options=None):
    """Run the fallback over canned results, one per rung; returns (kept, rungs tried)."""
    options = options or TranscribeOptions()
    tried = []

    def decode_at(temperature, rung):
        tried.append(rung)
        avg_logprob, ratio = outcomes[rung]
        return result(temperature, avg_logprob, ratio, text=f"rung {rung}")

    return decode_with_fallback(decode_at, options), tried


def test_fallback_stops_at_the_first_rung_that_passes():
    kept, tried = ladder([(-1.5, 1.2), (-0.5, 1.3), (-0.1, 1.0)])
    assert tried == [0, 1] and kept.text == "rung 1" and kept.temperature == 0.2


def test_when_every_rung_fails_the_likeliest_non_looping_result_is_kept_at_the_last_temperature():
    # rung 1 is the likeliest of all but loops; rung 3 is the likeliest that does not loop
    outcomes = [(-1.4, 1.2), (-0.3, 3.0), (-2.5, 1.1), (-1.1, 1.3), (-3.0, 1.0), (-1.9, 0.9)]
    kept, tried = ladder(outcomes)
    assert tried == list(range(6))
    assert kept.text == "rung 3" and kept.avg_logprob == -1.1
    assert kept.temperature == 1.0  # as faster-whisper: the prompt is reset as after the hottest rung


def test_when_every_rung_loops_the_likeliest_is_kept():
    kept, _ = ladder([(-1.2, 2.6), (-1.5, 2.9), (-0.9, 3.5), (-2.0, 2.5), (-1.3, 4.0), (-1.1, 2.7)])
    assert kept.text == "rung 2"


def test_silence_is_not_retried():
    options = TranscribeOptions()
    assert not needs_fallback(result(0.0, -1.5, no_speech=0.9), options)
    assert needs_fallback(result(0.0, -1.5, no_speech=0.1), options)
    assert needs_fallback(result(0.0, -0.2, ratio=2.5), options)


def test_compression_ratio_is_measured_on_the_stripped_text():
    assert compression_ratio("  hello there  ") == compression_ratio("hello there")
    assert compression_ratio(" we" * 40) > 2.4 > compression_ratio(" The quick brown fox jumps over the lazy dog.")


def test_rung_seeds_are_fixed_per_window_and_rung_and_differ_between_them():
    assert rung_seed(0, 3000, 2) == rung_seed(0, 3000, 2)
    assert len({rung_seed(0, 0, 1), rung_seed(0, 0, 2), rung_seed(0, 3000, 1), rung_seed(1, 0, 1)}) == 4


def test_seeded_sampling_repeats_whatever_the_global_random_state(tiny_model, audio_features):
    options = DecodingOptions(temperature=1.0, best_of=3, sample_len=16, seed=1234)
    runs = []
    for global_seed in (1, 2):
        mx.random.seed(global_seed)
        runs.append(DecodingTask(tiny_model, T, options).run(audio_features)[0])
    assert runs[0].tokens == runs[1].tokens and runs[0].sum_logprob == runs[1].sum_logprob
    hot = [DecodingOptions(temperature=5.0, sample_len=16, without_timestamps=True, seed=s) for s in range(6)]
    others = {DecodingTask(tiny_model, T, o).run(audio_features)[0].tokens for o in hot}
    assert len(others) > 1  # the seed does change what is drawn


def test_no_repeat_ngram_bans_what_followed_the_last_n_minus_one_tokens():
    f = NoRepeatNgram(3, sample_begin=1)
    assert f.banned([5, 6, 7, 5, 6]) == {7}  # "5 6" was followed by 7 before
    assert f.banned([5, 6, 7, 5, 6, 9, 5, 6]) == {7, 9}
    assert f.banned([5, 6]) == set()  # shorter than the n-gram: nothing to repeat
    assert NoRepeatNgram(1, 1).banned([4, 4, 8]) == {4, 8}  # size 1: no sampled token again


@pytest.mark.parametrize("make", [lambda: NoRepeatNgram(2, 1), lambda: RepetitionPenalty(1.5, 1)])
def test_repetition_filters_agree_in_mlx_and_numpy(make):
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((2, FAKE_VOCAB)).astype(np.float32)
    tokens = np.array([[T.sot, 5, 6, 5, 9], [T.sot, 7, 7, 8, 7]], dtype=np.int32)
    f = make()
    np.testing.assert_allclose(np.array(f.apply(mx.array(logits), mx.array(tokens), 4)), f.apply_np(logits, tokens, 4))


def test_repetition_penalty_lowers_tokens_already_sampled_only():
    logits = np.zeros((1, FAKE_VOCAB), dtype=np.float32)
    logits[0, [5, 6, 7]] = [2.0, -2.0, 2.0]
    out = RepetitionPenalty(2.0, sample_begin=1).apply_np(logits, np.array([[T.sot, 5, 6]]), 2)
    assert out[0, 5] == 1.0 and out[0, 6] == -4.0 and out[0, 7] == 2.0


def test_no_repeat_ngram_option_keeps_every_bigram_unique(tiny_model, audio_features):
    task = DecodingTask(tiny_model, T, DecodingOptions(no_repeat_ngram_size=2, sample_len=40, without_timestamps=True))
    tokens = list(task.run(audio_features)[0].tokens)
    bigrams = list(zip(tokens, tokens[1:]))
    assert len(bigrams) == len(set(bigrams))


@pytest.mark.parametrize(
    "overrides, name",
    [
        ({"temperature": math.nan}, "temperature"),
        ({"temperature": (0.0, math.inf)}, "temperature"),
        ({"temperature": tuple(i / 1000 for i in range(101))}, "temperature"),
        ({"temperature": ("hot",)}, "temperature"),
        ({"beam_size": 0}, "beam_size"),
        ({"beam_size": 65}, "beam_size"),
        ({"beam_size": 2.5}, "beam_size"),
        ({"best_of": 0}, "best_of"),
        ({"patience": math.nan}, "patience"),
        ({"patience": 0.0}, "patience"),
        ({"no_repeat_ngram_size": -1}, "no_repeat_ngram_size"),
        ({"repetition_penalty": 0.0}, "repetition_penalty"),
        ({"compression_ratio_threshold": math.nan}, "compression_ratio_threshold"),
        ({"no_speech_threshold": 1.5}, "no_speech_threshold"),
        ({"hallucination_silence_threshold": 2.0}, "hallucination_silence_threshold"),  # needs word timestamps
        ({"hallucination_silence_threshold": -1.0, "word_timestamps": True}, "hallucination_silence_threshold"),
        ({"seed": -1}, "seed"),
    ],
)
def test_options_out_of_range_name_the_option(overrides, name):
    with pytest.raises(InvalidOption) as info:
        merge_options(None, overrides)
    assert info.value.name == name


def test_default_options_are_faster_whispers():
    options = merge_options(None, {})
    assert (options.beam_size, options.best_of, options.patience) == (5, 5, 1.0)
    assert options.temperatures == (0.0, 0.2, 0.4, 0.6, 0.8, 1.0) and options.seed == 0
    assert options.decoding_options(0.0, None, None).beam_size == 5
    assert options.decoding_options(0.4, None, None, seed=9).seed == 9
    assert merge_options(None, {"beam_size": 1}).decoding_options(0.0, None, None).beam_size is None  # greedy


def test_fallback_temperatures_follow_the_increment_and_refuse_bad_ones():
    assert fallback_temperatures(0.0, 0.2) == (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    assert fallback_temperatures(0.3, 0) == (0.3,)
    for bad in (math.nan, -0.2, 1e-4, math.inf):
        with pytest.raises(InvalidOption) as info:
            fallback_temperatures(0.0, bad)
        assert info.value.name == "temperature_increment_on_fallback"
    with pytest.raises(InvalidOption):
        fallback_temperatures(math.nan, 0.2)
