"""The seek loop on synthetic token streams: a fake window decoder that "hears" words at known times
and writes Whisper-style timestamp tokens, so the seams between 30 s windows can be checked exactly."""

from __future__ import annotations

import pytest
from decode_helpers import FakeTokenizer

from mlx_audio_coreml.whisper.decoding import DecodingResult
from mlx_audio_coreml.whisper.fallback import needs_fallback
from mlx_audio_coreml.whisper.segments import cut_window
from mlx_audio_coreml.whisper.transcribe import SeekLoop, TranscribeOptions, WindowDecode

T = FakeTokenizer()
STEP = 0.02  # seconds per timestamp token


def result(tokens, *, temperature=0.0, avg_logprob=-0.2, no_speech_prob=0.01, compression_ratio=1.5):
    return DecodingResult(
        tuple(tokens),
        T.decode(tokens),
        "en",
        avg_logprob,
        avg_logprob * (len(tokens) + 1),
        no_speech_prob,
        temperature,
        compression_ratio,
    )


class WordWorld:
    """Word k (token k) is spoken from 0.6 k + 0.35 s to 0.6 k + 0.75 s: word 49 straddles 30 s."""

    def __init__(self, n_words=100, silent=()):
        self.words = [(k, 0.6 * k + 0.35, 0.6 * k + 0.75) for k in range(n_words) if k not in silent]
        self.duration = 0.6 * n_words + 0.75
        self.calls = []

    def decode(self, seek, n_frames, prompt, *, cut_off=True, per_segment=3):
        start, end = seek / 100, (seek + n_frames) / 100
        self.calls.append((seek, n_frames, list(prompt)))
        inside = [w for w in self.words if w[1] >= start - 1e-9 and w[2] <= end + 1e-9]
        straddling = [w for w in self.words if w[1] < end < w[2]]
        tokens = []
        for i in range(0, len(inside), per_segment):
            group = inside[i : i + per_segment]
            tokens += [T.timestamp(group[0][1] - start), *(w[0] for w in group), T.timestamp(group[-1][2] - start)]
        if cut_off and straddling:  # the window's edge cuts a word: an opening timestamp, no close
            tokens += [T.timestamp(straddling[0][1] - start), straddling[0][0]]
        if not inside and not straddling:
            return WindowDecode(result([], avg_logprob=-2.0, no_speech_prob=0.9))
        return WindowDecode(result(tokens))


def run_loop(world, options=None, **decode_kwargs):
    options = TranscribeOptions() if options is None else options
    frames = round(world.duration * 100)
    loop = SeekLoop(options, T, frames)
    progress = []
    segments = list(
        loop.run(lambda s, n, p: world.decode(s, n, p, **decode_kwargs), progress=lambda d, t: progress.append((d, t)))
    )
    return segments, progress


def spoken(segments):
    return [t for s in segments for t in s.tokens if t < T.eot]


def test_every_word_appears_once_across_window_seams():
    world = WordWorld(100)  # 60.5 s: three windows at least
    segments, _ = run_loop(world)
    assert spoken(segments) == [w[0] for w in world.words]
    assert len(world.calls) >= 3
    seeks = [c[0] for c in world.calls]
    assert seeks == sorted(seeks) and len(set(seeks)) == len(seeks)


def test_a_cut_off_word_is_decoded_again_from_its_start_in_the_next_window():
    world = WordWorld(100)
    run_loop(world)
    first_seek, first_frames, _ = world.calls[0]
    second_seek = world.calls[1][0]
    assert second_seek < first_seek + first_frames  # resumed before the window's end...
    cut_word = next(w for w in world.words if w[1] < 30.0 < w[2])
    assert second_seek / 100 <= cut_word[1]  # ...and not after the cut word's start


def test_segment_times_are_absolute_and_ordered():
    world = WordWorld(100)
    segments, _ = run_loop(world)
    by_word = {w[0]: w for w in world.words}
    for s in segments:
        text = [t for t in s.tokens if t < T.eot]
        assert s.start == pytest.approx(by_word[text[0]][1], abs=STEP)
        assert s.end == pytest.approx(by_word[text[-1]][2], abs=STEP)
    assert [s.id for s in segments] == list(range(len(segments)))
    starts = [s.start for s in segments]
    assert starts == sorted(starts)


def test_a_window_heard_to_its_end_advances_a_whole_window():
    world = WordWorld(100)
    run_loop(world, cut_off=False)  # never a dangling segment: each window ends on a lone timestamp
    seeks = [c[0] for c in world.calls]
    assert seeks[:3] == [0, 3000, 6000]


def test_silent_windows_are_skipped_and_speech_after_them_is_kept():
    silent = set(range(5, 60))  # roughly 3 s .. 36 s is silence
    world = WordWorld(100, silent=silent)
    segments, _ = run_loop(world)
    assert spoken(segments) == [w[0] for w in world.words]
    assert all(not (3.5 < s.start < 36.0) for s in segments)


def test_progress_reaches_the_total_and_never_goes_back():
    world = WordWorld(100)
    _, progress = run_loop(world)
    done = [d for d, _ in progress]
    assert done == sorted(done)
    assert done[-1] == pytest.approx(progress[-1][1])
    assert progress[-1][1] == pytest.approx(world.duration, abs=0.01)


def test_each_window_is_prompted_with_the_text_before_it():
    world = WordWorld(100)
    options = TranscribeOptions(condition_on_previous_text=True)
    run_loop(world, options)
    assert world.calls[0][2] == []
    second_prompt = world.calls[1][2]
    assert [t for t in second_prompt if t < T.eot] == [
        w[0] for w in world.words if w[2] <= world.calls[1][0] / 100 + STEP
    ]


def test_no_prompt_without_conditioning_and_none_after_a_hot_window():
    world = WordWorld(100)
    run_loop(world, TranscribeOptions(condition_on_previous_text=False))
    assert all(prompt == [] for _, _, prompt in world.calls)

    hot = WordWorld(100)
    frames = round(hot.duration * 100)
    loop = SeekLoop(TranscribeOptions(), T, frames)

    def decode(seek, n, prompt):
        window = hot.decode(seek, n, prompt)
        return WindowDecode(result(window.result.tokens, temperature=0.8))  # accepted only at 0.8

    list(loop.run(decode))
    assert all(prompt == [] for _, _, prompt in hot.calls)


def test_initial_prompt_tokens_lead_the_first_prompt():
    world = WordWorld(20)
    loop = SeekLoop(TranscribeOptions(), T, round(world.duration * 100), initial_prompt=[7, 8, 9])
    list(loop.run(world.decode))
    assert world.calls[0][2] == [7, 8, 9]


def test_cut_window_without_timestamps_is_one_segment_over_the_whole_window():
    cut = cut_window([5, 6, 7], T.timestamp_begin, 1234)
    assert len(cut.spans) == 1 and cut.spans[0].start == 0.0 and cut.spans[0].end == pytest.approx(12.34)
    assert cut.advance_frames == 1234


def test_cut_window_single_timestamp_ending_and_pairs():
    ts = T.timestamp
    tokens = [ts(0.0), 5, 6, ts(1.0), ts(1.0), 7, ts(2.5)]
    cut = cut_window(tokens, T.timestamp_begin, 3000)
    assert [(s.start, s.end) for s in cut.spans] == [(0.0, 1.0), (1.0, 2.5)]
    assert cut.ended_on_single_timestamp and cut.advance_frames == 3000
    cut = cut_window(tokens + [ts(2.6), 8], T.timestamp_begin, 3000)  # a dangling segment at the end
    assert len(cut.spans) == 2 and not cut.ended_on_single_timestamp
    assert cut.advance_frames == 250 and cut.consumed == tuple(tokens)


def test_fallback_is_needed_for_looping_or_unlikely_text_but_not_for_silence():
    options = TranscribeOptions()
    assert not needs_fallback(result([5]), options)
    assert needs_fallback(result([5], compression_ratio=3.0), options)
    assert needs_fallback(result([5], avg_logprob=-1.5), options)
    assert not needs_fallback(result([5], avg_logprob=-1.5, no_speech_prob=0.9), options)  # silence: skipped instead


def test_segments_without_text_are_dropped_and_ids_stay_consecutive():
    ts = T.timestamp
    windows = iter([[ts(0.0), ts(0.5), ts(0.5), 5, ts(1.0)], [ts(0.0), T.eot - 99, ts(0.4)]])

    def decode(seek, n, prompt):
        return WindowDecode(result(next(windows)))

    segments = list(SeekLoop(TranscribeOptions(), T, 3000 + 1000).run(decode))
    assert [(s.id, s.text) for s in segments] == [(0, " w5"), (1, " w1")]
    assert segments[1].start == pytest.approx(30.0)
