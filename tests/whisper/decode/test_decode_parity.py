"""Parity with a decoder no one here wrote: faster-whisper (CTranslate2) on the same weights.

- Whole transcriptions at temperature 0 (greedy and beam 5, transcribe and translate, tiny.en and
  base) give the same tokens and timestamps.
- Step by step (ct2_steps.py): along CTranslate2's own path, greedy or sampled at a fallback
  temperature, our filters forbid the same tokens and our log-probs agree at every step.
- Step by step along a beam-5 path too (CTranslate2's logits taken with the path forced).
- Fallback: the temperature-0 rung is judged the same way (same mean log-prob, same decision); our
  own ladder, made to fall back, gives CTranslate2's tokens at temperature 0 and CTranslate2's
  filters and log-probs along the sample it keeps above; with both engines' default ladders a
  window that passes at temperature 0 gives the same tokens.
"""

from __future__ import annotations

import pytest
from ct2_steps import compare, first_window_features, reference_generate, steps_along
from decode_helpers import JFK, librivox_clips
from translation_clips import make_espeak_clip, tools_available

from mlx_audio_coreml.whisper.decoding import DecodingTask
from mlx_audio_coreml.whisper.fallback import decode_with_fallback, needs_fallback, rung_seed
from mlx_audio_coreml.whisper.tokenizer import get_tokenizer
from mlx_audio_coreml.whisper.transcribe_options import TranscribeOptions

pytestmark = pytest.mark.realweights
slow = pytest.mark.slow
LOGPROB_TOLERANCE = 1e-3  # float32 on both sides: measured differences are ~2e-5


def _peer(name: str):
    faster_whisper = pytest.importorskip("faster_whisper")
    from speech_data import real_model_dir

    path = real_model_dir(name)
    if path is None:
        pytest.skip(f"{name} CTranslate2 weights not installed")
    return faster_whisper.WhisperModel(str(path), device="cpu", compute_type="float32", cpu_threads=2)


@pytest.fixture(scope="module")
def peers():
    return {}


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    """Clip name -> path: jfk, the first LibriVox clip, and espeak-ng German and French."""
    found = {"jfk": JFK}
    clips = librivox_clips()
    if clips:
        found["librivox"] = clips[0][0]
    if tools_available():
        folder = tmp_path_factory.mktemp("speech")
        found.update({lang: make_espeak_clip(folder, lang) for lang in ("de", "fr")})
    return found


@pytest.fixture(scope="module")
def engines(request, peers):
    """(ours, faster-whisper, bundle, CTranslate2 model) for a model name, loaded once per module."""

    def get(name: str):
        if name not in peers:
            ours = request.getfixturevalue("tiny_en" if name == "tiny.en" else "base_transcriber")
            peer = _peer(name)
            peers[name] = (ours, peer, ours.bundle, peer.model)
        return peers[name]

    return get


def clip_of(speech, name):
    if name not in speech:
        pytest.skip(f"clip {name} not available (pocketsphinx-testdata, espeak-ng, sox)")
    return str(speech[name])


def language_of(model, clip):
    return "en" if model == "tiny.en" or clip in ("jfk", "librivox") else clip


WHOLE = [
    pytest.param("tiny.en", "jfk", "transcribe", 1, id="tiny.en-jfk-greedy"),
    pytest.param("tiny.en", "jfk", "transcribe", 5, id="tiny.en-jfk-beam5"),
    pytest.param("tiny.en", "librivox", "transcribe", 1, id="tiny.en-librivox-greedy"),
    pytest.param("tiny.en", "librivox", "transcribe", 5, id="tiny.en-librivox-beam5", marks=slow),
    pytest.param("base", "jfk", "transcribe", 1, id="base-jfk-greedy", marks=slow),
    pytest.param("base", "jfk", "transcribe", 5, id="base-jfk-beam5", marks=slow),
    pytest.param("base", "de", "translate", 1, id="base-de-translate-greedy", marks=slow),
    pytest.param("base", "de", "translate", 5, id="base-de-translate-beam5", marks=slow),
    pytest.param("base", "fr", "translate", 5, id="base-fr-translate-beam5", marks=slow),
]


@pytest.mark.parametrize("model, clip, task, beam_size", WHOLE)
def test_tokens_match_faster_whisper(engines, speech, model, clip, task, beam_size):
    ours, peer, _, _ = engines(model)
    audio, language = clip_of(speech, clip), language_of(model, clip)
    expected_segments, _ = peer.transcribe(audio, language=language, task=task, beam_size=beam_size, temperature=0.0)
    expected = [(s.tokens, round(s.start, 2), round(s.end, 2)) for s in expected_segments]
    kwargs = {"language": language} if model != "tiny.en" else {}
    ours_segments, _ = ours.transcribe(audio, task=task, beam_size=beam_size, temperature=0.0, **kwargs)
    assert [(list(s.tokens), round(s.start, 2), round(s.end, 2)) for s in ours_segments] == expected


STEPS = [  # (model, clip, task, beam size at temperature 0, temperature)
    pytest.param("base", "de", "translate", 1, 0.0, id="base-de-translate-greedy"),
    pytest.param("tiny.en", "jfk", "transcribe", 5, 0.0, id="tiny.en-jfk-beam5"),
    pytest.param("tiny.en", "jfk", "transcribe", 1, 0.0, id="tiny.en-jfk-greedy", marks=slow),
    pytest.param("tiny.en", "librivox", "transcribe", 5, 0.0, id="tiny.en-librivox-beam5", marks=slow),
    pytest.param("base", "jfk", "transcribe", 1, 0.0, id="base-jfk-greedy", marks=slow),
    pytest.param("base", "librivox", "transcribe", 5, 0.0, id="base-librivox-beam5", marks=slow),
    pytest.param("base", "librivox", "translate", 1, 0.0, id="base-librivox-translate-greedy", marks=slow),
    pytest.param("base", "librivox", "translate", 5, 0.0, id="base-librivox-translate-beam5", marks=slow),
    pytest.param("base", "fr", "translate", 1, 0.0, id="base-fr-translate-greedy", marks=slow),
    pytest.param("base", "de", "translate", 5, 0.0, id="base-de-translate-beam5", marks=slow),
    pytest.param("base", "de", "translate", 1, 0.6, id="base-de-translate-sampled-0.6", marks=slow),
    pytest.param("tiny.en", "librivox", "transcribe", 1, 1.0, id="tiny.en-librivox-sampled-1.0", marks=slow),
]


@pytest.mark.parametrize("model, clip, task, beam, temperature", STEPS)
def test_filters_and_logprobs_agree_with_ctranslate2_at_every_step(
    engines, speech, model, clip, task, beam, temperature
):
    """Along CTranslate2's path (greedy, beam 5 or sampled): same forbidden tokens, same log-probs;
    at temperature 0 the same tokens, and greedy takes CTranslate2's token at every step."""
    _, _, bundle, ct2_model = engines(model)
    result = compare(
        bundle, ct2_model, clip_of(speech, clip), task=task, language=language_of(model, clip), beam=beam,
        temperature=temperature,
    )  # fmt: skip
    _assert_steps_agree(result.steps)
    assert result.our_no_speech == pytest.approx(result.reference_no_speech, abs=1e-4)
    if temperature == 0:
        assert result.our_tokens == result.reference_tokens
        assert result.our_avg_logprob == pytest.approx(result.reference_avg_logprob, abs=LOGPROB_TOLERANCE)
    if temperature == 0 and beam == 1:  # greedy: every one of our choices is CTranslate2's
        # (a window that loops to the length limit in both engines has no EOT step)
        assert [s.our_argmax for s in result.steps] == (result.reference_tokens + [bundle.tokenizer.eot])[
            : len(result.steps)
        ]


def _assert_steps_agree(steps):
    assert steps and all(s.same_forbidden for s in steps), [s for s in steps if not s.same_forbidden][:3]
    assert max(s.max_logprob_diff for s in steps) < LOGPROB_TOLERANCE


@pytest.mark.slow
@pytest.mark.parametrize("clip", ["de", "fr"])
def test_beam_search_tokens_and_the_first_rungs_verdict_match_ctranslate2(engines, speech, clip):
    """Beam 5 (the default) at temperature 0: same tokens, same mean log-prob, so the fallback
    decision for the first rung is the same as faster-whisper's."""
    _, _, bundle, ct2_model = engines("base")
    result = compare(bundle, ct2_model, clip_of(speech, clip), task="translate", language=clip, beam=5)
    assert result.our_tokens == result.reference_tokens
    assert result.our_avg_logprob == pytest.approx(result.reference_avg_logprob, abs=LOGPROB_TOLERANCE)
    ours, theirs = (
        _rung(result.our_avg_logprob, result.our_no_speech),
        _rung(result.reference_avg_logprob, result.reference_no_speech),
    )
    assert needs_fallback(ours, TranscribeOptions()) == needs_fallback(theirs, TranscribeOptions())


def _rung(avg_logprob, no_speech):
    from mlx_audio_coreml.whisper.decoding import DecodingResult

    return DecodingResult((), "", None, avg_logprob, 0.0, no_speech, 0.0, 1.0)


LADDER = [
    pytest.param("tiny.en", "jfk", "transcribe", id="tiny.en-jfk-transcribe"),
    pytest.param("base", "librivox", "translate", id="base-librivox-translate", marks=slow),
    pytest.param("base", "de", "translate", id="base-de-translate", marks=slow),
]


@pytest.mark.parametrize("model, clip, task", LADDER)
def test_fallback_ladder_agrees_with_ctranslate2_at_temperature_0_then_above(engines, speech, model, clip, task):
    """Our own fallback (decode_with_fallback, default beam 5 then best of 5 samples) with a log-prob
    threshold no window meets, so rung 0 fails: rung 0 gives CTranslate2's beam-5 tokens and both
    engines' verdict is 'fall back'; the sampled sequence our next rung keeps has, at every step,
    CTranslate2's filters and log-probs."""
    _, _, bundle, ct2_model = engines(model)
    features = first_window_features(bundle, clip_of(speech, clip))
    options = TranscribeOptions(task=task, temperature=(0.0, 0.4), logprob_threshold=-1e-3)
    multilingual = bundle.model.is_multilingual
    language = language_of(model, clip) if multilingual else None
    tokenizer = get_tokenizer(bundle, multilingual=multilingual, language=language, task=task)
    rungs = []

    def decode_at(temperature, rung):
        decode_options = options.decoding_options(temperature, language, None, rung_seed(options.seed, 0, rung))
        decoder = DecodingTask(bundle.model, tokenizer, decode_options, bundle.config)
        rungs.append((decoder, decoder.run(features)[0]))
        return rungs[-1][1]

    decode_with_fallback(decode_at, options)
    assert [r.temperature for _, r in rungs] == [0.0, 0.4]
    (beam, beam_result), (hot, hot_result) = rungs
    reference = reference_generate(ct2_model, features, list(beam.initial_tokens), beam=5, temperature=0.0)
    n = len(reference.sequences_ids[0])
    assert list(beam_result.tokens) == list(reference.sequences_ids[0])
    theirs = _rung(reference.scores[0] * n / (n + 1), float(reference.no_speech_prob))
    assert needs_fallback(beam_result, options) and needs_fallback(theirs, options)
    _assert_steps_agree(steps_along(ct2_model, features, hot, [t for t in hot_result.tokens if t != tokenizer.eot]))


@pytest.mark.slow
def test_default_ladders_give_the_same_text_when_the_first_rung_passes(engines, speech):
    """Both engines with their default options (beam 5 then the temperature ladder) on base."""
    ours, peer, _, _ = engines("base")
    audio = clip_of(speech, "de")
    expected_segments, _ = peer.transcribe(audio, task="translate")
    expected = [(s.tokens, s.temperature) for s in expected_segments]
    if any(t > 0 for _, t in expected):
        pytest.skip("faster-whisper fell back on this clip: sampled rungs cannot match")
    ours_segments, _ = ours.transcribe(audio, task="translate")
    assert [(list(s.tokens), s.temperature) for s in ours_segments] == expected


def test_word_timestamps_match_faster_whisper(engines):
    ours, peer, _, _ = engines("tiny.en")
    expected_segments, _ = peer.transcribe(str(JFK), language="en", beam_size=1, temperature=0.0, word_timestamps=True)
    expected = [(w.word, w.start, w.end) for s in expected_segments for w in s.words]
    ours_segments, _ = ours.transcribe(str(JFK), beam_size=1, temperature=0.0, word_timestamps=True)
    got = [(w.word, w.start, w.end) for s in ours_segments for w in s.words]
    assert [w for w, _, _ in got] == [w for w, _, _ in expected]
    for (_, start, end), (_, ref_start, ref_end) in zip(got, expected):
        assert start == pytest.approx(ref_start, abs=0.021) and end == pytest.approx(ref_end, abs=0.021)
