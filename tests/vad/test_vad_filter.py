"""`transcribe(..., vad_filter=True)`: silence is dropped before decoding and times map back."""

from __future__ import annotations

import numpy as np
import pytest
from vad_helpers import speech_in_noise

from mlx_audio_coreml.errors import InvalidOption
from mlx_audio_coreml.vad import SpeechSpan, VadOptions
from mlx_audio_coreml.whisper.segments import Segment, Word
from mlx_audio_coreml.whisper.vad_filter import SpeechOnly, vad_options
from speech_data import JFK_TEXT, real_model_dir
from speech_data import text_similarity as similarity


@pytest.fixture(scope="module")
def tiny_en_session():
    import mlx_audio_coreml as mac

    if real_model_dir("tiny.en") is None:
        pytest.skip("real tiny.en weights not installed (scripts/fetch_models.sh)")
    return mac.WhisperSession.from_pretrained("tiny.en")


def _speech_map() -> SpeechOnly:
    # speech at 2-3 s and 10-12 s of the original: joined, 0-1 s and 1-3 s
    spans = (SpeechSpan(32000, 48000), SpeechSpan(160000, 192000))
    return SpeechOnly(np.zeros(48000, np.float32), spans, (0, 16000))


def _segment(start: float, end: float, words: tuple[Word, ...] | None = None) -> Segment:
    return Segment(0, 0, start, end, " x", (1,), 0.0, -0.1, 1.0, 0.0, words)


def test_times_in_joined_speech_map_to_their_span_in_the_original():
    speech = _speech_map()
    assert speech.original_time(0.5) == 2.5
    assert speech.original_time(1.5) == 10.5
    assert speech.original_time(1.0) == 10.0  # a start on the seam begins the later span
    assert speech.original_time(1.0, is_end=True) == 3.0  # an end on the seam closes the earlier one
    assert speech.original_time(3.0, is_end=True) == 12.0


def test_restore_moves_segments_and_their_words():
    words = (Word(0.2, 0.9, " a", 0.9), Word(1.0, 2.5, " b", 0.8))
    (restored,) = SpeechOnly.restore(_speech_map(), [_segment(0.2, 2.5, words)])
    assert (restored.start, restored.end) == (2.2, 11.5)
    assert [(w.start, w.end) for w in restored.words] == [(2.2, 2.9), (10.0, 11.5)]


def test_vad_parameters_accept_a_dict_and_reject_unknown_names():
    assert vad_options({"threshold": 0.6}) == VadOptions(threshold=0.6)
    assert vad_options(None) == VadOptions()
    with pytest.raises(InvalidOption):
        vad_options({"min_silence_ms": 100})


@pytest.mark.realweights
def test_one_utterance_in_a_minute_of_noise_and_silence_is_all_that_is_transcribed(tiny_en_session, jfk, vad_model):
    audio = speech_in_noise(jfk, at_s=30.0)
    segments, info = tiny_en_session.transcribe(audio, vad_filter=True, word_timestamps=True)
    segments = list(segments)
    assert info.duration == pytest.approx(60.0)
    text = "".join(s.text for s in segments)
    assert similarity(JFK_TEXT, text) >= 0.8, text
    # jfk.wav speaks from ~0.3 s to ~10.6 s of its 11 s: here 30.3 s to 40.6 s
    assert abs(segments[0].start - 30.3) <= 1.0
    assert abs(segments[-1].end - 40.6) <= 1.0
    word_times = [t for s in segments for w in s.words for t in (w.start, w.end)]
    assert min(word_times) >= 29.5 and max(word_times) <= 41.5
    assert word_times == sorted(word_times)


@pytest.mark.realweights
def test_noise_alone_gives_no_segments(tiny_en_session, vad_model):
    audio = speech_in_noise(np.zeros(0, np.float32), at_s=0.0, total_s=30.0)
    segments, info = tiny_en_session.transcribe(audio, vad_filter=True)
    assert list(segments) == []
    assert info.duration == pytest.approx(30.0)


@pytest.mark.realweights
def test_bad_vad_parameters_raise_when_transcribe_is_called(tiny_en_session):
    with pytest.raises(InvalidOption):
        tiny_en_session.transcribe(np.zeros(16000, np.float32), vad_filter=True, vad_parameters={"threshold": 2.0})
