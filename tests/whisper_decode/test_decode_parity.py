"""Parity with a decoder no one here wrote: faster-whisper (CTranslate2) on the same weights must
produce the same tokens, timestamps included, for greedy and beam search on real speech."""

from __future__ import annotations

import pytest

from decode_helpers import JFK, librivox_clips

pytestmark = pytest.mark.realweights


@pytest.fixture(scope="module")
def reference_model():
    faster_whisper = pytest.importorskip("faster_whisper")
    from mlx_audio_coreml.whisper.model_names import local_store

    path = local_store() / "tiny.en"
    if not (path / "model.bin").is_file():
        pytest.skip("tiny.en CTranslate2 weights not installed")
    return faster_whisper.WhisperModel(str(path), device="cpu", compute_type="float32", cpu_threads=2)


def cases():
    clips = librivox_clips()
    found = [pytest.param(JFK, 1, id="jfk-greedy"), pytest.param(JFK, 5, id="jfk-beam5")]
    if clips:
        found.append(pytest.param(clips[0][0], 1, id="librivox-greedy"))
        found.append(pytest.param(clips[0][0], 5, id="librivox-beam5", marks=pytest.mark.slow))
    return found


@pytest.mark.parametrize("audio, beam_size", cases())
def test_tokens_match_faster_whisper(tiny_en, reference_model, audio, beam_size):
    options = dict(beam_size=beam_size, temperature=0.0)
    expected_segments, _ = reference_model.transcribe(str(audio), language="en", **options)
    expected = [(s.tokens, round(s.start, 2), round(s.end, 2)) for s in expected_segments]
    ours_segments, _ = tiny_en.transcribe(str(audio), beam_size=None if beam_size == 1 else beam_size, temperature=0.0)
    ours = [(list(s.tokens), round(s.start, 2), round(s.end, 2)) for s in ours_segments]
    assert ours == expected


def test_word_timestamps_match_faster_whisper(tiny_en, reference_model):
    expected_segments, _ = reference_model.transcribe(str(JFK), language="en", beam_size=1, temperature=0.0, word_timestamps=True)
    expected = [(w.word, w.start, w.end) for s in expected_segments for w in s.words]
    ours_segments, _ = tiny_en.transcribe(str(JFK), temperature=0.0, word_timestamps=True)
    ours = [(w.word, w.start, w.end) for s in ours_segments for w in s.words]
    assert [w for w, _, _ in ours] == [w for w, _, _ in expected]
    for (_, start, end), (_, ref_start, ref_end) in zip(ours, expected):
        assert start == pytest.approx(ref_start, abs=0.021) and end == pytest.approx(ref_end, abs=0.021)
