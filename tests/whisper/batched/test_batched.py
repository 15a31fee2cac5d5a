"""whisper/batched.py: VAD chunks, their segments on the original time line, seams, many files."""

from __future__ import annotations

import numpy as np
import pytest
from clips import joined_clips, word_error_rate, words

from mlx_audio_coreml.errors import InvalidOption
from mlx_audio_coreml.whisper.batched import BATCH_VAD, batch_vad_options, chunk_spans, speech_chunks, transcribe_files
from mlx_audio_coreml.whisper.segments import join_text
from speech_data import JFK, librivox_clips, text_similarity

TS = 50364  # tiny.en's first timestamp token


def test_chunk_keeps_text_after_its_last_timestamp_pair():
    tokens = [TS, 100, 101, TS + 50, TS + 50, 102, 103]  # second segment never closed
    spans = chunk_spans(tokens, TS, n_frames=1500)
    assert [s.tokens for s in spans] == [(TS, 100, 101, TS + 50), (TS + 50, 102, 103)]
    assert spans[1].start == pytest.approx(1.0) and spans[1].end == pytest.approx(15.0)


def test_chunk_without_timestamps_is_one_segment():
    spans = chunk_spans([100, 101, 102], TS, n_frames=900)
    assert [(s.start, s.end, s.tokens) for s in spans] == [(0.0, 9.0, (100, 101, 102))]


def test_vad_options_merge_over_batched_defaults_and_stay_within_a_window():
    assert batch_vad_options(None) == BATCH_VAD
    merged = batch_vad_options({"threshold": 0.6, "max_speech_duration_s": 90})
    assert merged.threshold == 0.6 and merged.min_silence_duration_ms == 160 and merged.max_speech_duration_s == 30
    with pytest.raises(InvalidOption):
        batch_vad_options({"no_such_option": 1})


def test_speech_chunks_are_ordered_disjoint_and_at_most_30_s():
    audio, _ = joined_clips(passes=2)
    chunks = speech_chunks(audio)
    assert len(chunks) >= 2
    previous_end = 0
    for chunk in chunks:
        assert len(chunk.samples) <= 30 * 16000
        assert chunk.spans[0].start >= previous_end
        previous_end = chunk.spans[-1].end


def test_no_word_is_lost_or_repeated_at_chunk_seams(tiny_session):
    audio, clips = joined_clips(passes=1)
    assert len(speech_chunks(audio)) >= 2  # at least one seam
    segments, _ = tiny_session.transcribe(audio, batch_size=4, beam_size=1, word_timestamps=True)
    heard = [w for s in segments for w in s.words]
    assert [w.start for w in heard] == sorted(w.start for w in heard)
    for start, end, reference in clips:  # each clip's words sit in its own time span, none twice
        inside = " ".join(w.word for w in heard if start - 0.3 <= (w.start + w.end) / 2 <= end + 0.3)
        assert text_similarity(reference, inside) >= 0.7, (reference, inside)  # tiny.en mishears a word or two
        assert len(words(reference)) - 2 <= len(words(inside)) <= len(words(reference)) + 1, (reference, inside)
    assert all(any(a - 0.3 <= (w.start + w.end) / 2 <= b + 0.3 for a, b, _ in clips) for w in heard)


def test_many_files_in_one_call_match_each_file_alone(tiny_session):
    clips = librivox_clips()
    if not clips:
        pytest.skip("pocketsphinx-testdata's LibriVox clips are not installed")
    files = [str(JFK), str(clips[0][0]), str(clips[2][0])]
    together = transcribe_files(tiny_session, files, batch_size=3, beam_size=1)
    for path, (segments, info) in zip(files, together):
        alone, alone_info = tiny_session.transcribe(path, batch_size=1, beam_size=1)
        assert [(s.start, s.end, s.text) for s in segments] == [(s.start, s.end, s.text) for s in alone]
        assert info.duration == pytest.approx(alone_info.duration)
    assert "ask not what your country" in join_text(together[0][0]).lower()


def test_silence_gives_no_segments(tiny_session):
    segments, info = tiny_session.transcribe(np.zeros(16000 * 3, np.float32), batch_size=2)
    assert list(segments) == [] and info.duration == pytest.approx(3.0)


@pytest.mark.slow
def test_batched_wer_within_half_a_point_of_sequential_on_minutes_of_speech(tiny_session):
    audio, clips = joined_clips(passes=4)  # ~2.6 min
    reference = " ".join(text for _, _, text in clips)
    batched, _ = tiny_session.transcribe(audio, batch_size=8, beam_size=1)
    sequential, _ = tiny_session.transcribe(audio, beam_size=1)
    batched_wer = word_error_rate(reference, join_text(list(batched)))
    sequential_wer = word_error_rate(reference, join_text(list(sequential)))
    assert batched_wer <= sequential_wer + 0.005, (batched_wer, sequential_wer)


def test_encoding_the_next_batch_ahead_on_a_second_stream_gives_the_same_segments(tiny_session, monkeypatch):
    """As on a CUDA GPU with ENCODE_AHEAD: each next batch's mel and encoder are queued on another
    stream (a CPU stream here) before this batch decodes, and used when that batch comes."""
    import mlx.core as mx

    from mlx_audio_coreml.whisper import batched

    audio, _ = joined_clips(passes=1)
    want, _ = tiny_session.transcribe(audio, batch_size=1, beam_size=1)
    made, decoded = [], []
    cls = batched.BatchedTranscriber
    real_features, real_decode = cls._features, cls._decode_batch
    monkeypatch.setattr(cls, "_features", lambda self, *a: made.append(1) or real_features(self, *a))
    monkeypatch.setattr(cls, "_decode_batch", lambda self, *a: decoded.append(1) or real_decode(self, *a))
    side = mx.new_stream(mx.cpu)
    monkeypatch.setattr(batched, "ahead_stream", lambda: side)
    real_ahead, queued = cls._encode_ahead, []
    monkeypatch.setattr(cls, "_encode_ahead", lambda self, *a: queued.append(real_ahead(self, *a)) or queued[-1])
    got, _ = tiny_session.transcribe(audio, batch_size=1, beam_size=1)
    assert [(s.start, s.end, s.text) for s in got] == [(s.start, s.end, s.text) for s in want]
    assert len(decoded) >= 2 and len(made) == len(decoded), "each batch encoded once, never twice"
    assert any(q is not None for q in queued), "no batch was encoded ahead"
