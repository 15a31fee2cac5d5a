"""`hallucination_silence_threshold` on hand-made segments with timed words (faster-whisper's rule)."""

from __future__ import annotations

from mlx_audio_coreml.whisper.hallucination import cut_hallucinations, is_segment_anomaly
from mlx_audio_coreml.whisper.segments import Segment, Word


def segment(start, end, words, probability=0.9):
    """A segment whose words share [start, end] evenly, each with `probability`."""
    step = (end - start) / len(words)
    timed = tuple(Word(start + i * step, start + (i + 1) * step, f" {w}", probability) for i, w in enumerate(words))
    return Segment(0, 0, start, end, " ".join(words), (), 0.0, -0.3, 1.2, 0.1, timed)


def cut(segments, **kwargs):
    args = dict(threshold=2.0, window_start=0.0, window_duration=30.0, content_duration=60.0, last_speech_end=0.0)
    return cut_hallucinations(segments, **{**args, **kwargs})


def test_improbable_or_too_short_words_make_an_anomaly():
    assert not is_segment_anomaly(segment(1.0, 3.0, ["a", "real", "sentence", "here"]))
    assert is_segment_anomaly(segment(1.0, 3.0, ["thanks", "for", "watching"], probability=0.05))
    assert is_segment_anomaly(segment(1.0, 1.1, ["blip", "blop"]))  # 0.05 s words


def test_plain_speech_is_kept_as_it_is():
    speech = [segment(0.5, 4.0, ["hello", "there", "my", "friend"]), segment(4.2, 8.0, ["how", "are", "you", "today"])]
    out = cut(speech)
    assert out.segments == speech and out.seek_to is None and not out.redecode


def test_a_lone_hallucination_near_the_window_start_is_dropped_and_passed_over():
    out = cut([segment(1.0, 3.0, ["thanks", "for", "watching"], probability=0.05)])
    assert not out.redecode and out.segments == []  # the gap (1 s) is short: no redecode, but dropped
    assert out.seek_to == 1.0


def test_a_hallucination_opening_a_window_late_is_jumped_over():
    out = cut([segment(10.0, 12.0, ["thanks", "for", "watching"], probability=0.05)])
    assert out.redecode and out.seek_to == 10.0


def test_a_hallucination_between_silences_drops_it_and_what_follows():
    speech = segment(0.2, 5.0, ["a", "real", "sentence", "here"])
    ghost = segment(12.0, 13.0, ["you", "you"], probability=0.05)
    later = segment(20.0, 22.0, ["more", "words", "said", "later"])
    out = cut([speech, ghost, later])
    assert out.segments == [speech] and out.seek_to == 12.0 and not out.redecode
