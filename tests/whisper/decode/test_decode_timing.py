"""Word timing pieces: DTW, the median filter, punctuation merging and fitting words into segments."""

from __future__ import annotations

import numpy as np
import pytest

from mlx_audio_coreml.whisper.segments import Segment
from mlx_audio_coreml.whisper.timing import WordTiming, attach_words, dtw, median_filter, merge_punctuations


def reference_dtw(cost):
    """Textbook O(N M) dynamic time warping with the same moves and tie order (diagonal, down, right)."""
    n, m = cost.shape
    total = np.full((n + 1, m + 1), np.inf)
    total[0, 0] = 0
    move = {}
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            options = [(total[i - 1, j - 1], 0), (total[i - 1, j], 1), (total[i, j - 1], 2)]
            best = (
                options[0]
                if options[0][0] < options[1][0] and options[0][0] < options[2][0]
                else (options[1] if options[1][0] < options[0][0] and options[1][0] < options[2][0] else options[2])
            )
            total[i, j] = cost[i - 1, j - 1] + best[0]
            move[i, j] = best[1]
    path, i, j = [], n, m
    while i > 0 or j > 0:
        path.append((i - 1, j - 1))
        step = move.get((i, j), 1 if j == 0 else 2)
        i, j = (i - 1, j - 1) if step == 0 else ((i - 1, j) if step == 1 else (i, j - 1))
    return np.array(path[::-1]).T


def test_dtw_follows_the_cheap_cells_of_a_hand_made_matrix():
    # three tokens over seven frames; token 0 is cheap on frames 0-1, token 1 on 2-4, token 2 on 5-6
    cost = np.ones((3, 7))
    cost[0, 0:2] = 0
    cost[1, 2:5] = 0
    cost[2, 5:7] = 0
    rows, cols = dtw(cost)
    assert list(zip(rows.tolist(), cols.tolist())) == [(0, 0), (0, 1), (1, 2), (1, 3), (1, 4), (2, 5), (2, 6)]


def test_dtw_on_a_tall_matrix_moves_down():
    rows, cols = dtw(np.zeros((4, 1)))
    assert rows.tolist() == [0, 1, 2, 3] and cols.tolist() == [0, 0, 0, 0]


@pytest.mark.parametrize("shape", [(5, 9), (12, 40), (1, 6), (7, 7)])
def test_dtw_matches_the_textbook_algorithm(shape):
    cost = np.random.default_rng(sum(shape)).standard_normal(shape)
    rows, cols = dtw(cost)
    expected = reference_dtw(cost)
    np.testing.assert_array_equal(rows, expected[0])
    np.testing.assert_array_equal(cols, expected[1])
    assert np.all(np.diff(rows) >= 0) and np.all(np.diff(cols) >= 0)


def test_median_filter_matches_a_direct_median_with_reflected_edges():
    x = np.random.default_rng(0).standard_normal((2, 3, 20))
    out = median_filter(x, 7)
    padded = np.pad(x, [(0, 0), (0, 0), (3, 3)], mode="reflect")
    direct = np.stack([np.median(padded[..., i : i + 7], axis=-1) for i in range(20)], axis=-1)
    np.testing.assert_allclose(out, direct)
    with pytest.raises(ValueError):
        median_filter(x, 4)


def timing(word, start, end, n_tokens=1):
    return WordTiming(word, list(range(n_tokens)), start, end, 0.9)


def test_punctuation_joins_its_neighbouring_word():
    words = [
        timing(' "', 0, 0),
        timing("Hello", 0, 1),
        timing(",", 1, 1),
        timing(" world", 1, 2),
        timing(".", 2, 2),
        timing('"', 2, 2),
    ]
    merge_punctuations(words)
    assert [w.word for w in words if w.word] == [' "Hello,', ' world."']
    assert [len(w.tokens) for w in words if w.word] == [3, 3]  # the marks' tokens went with them


def segment(start, end, tokens, seek=0):
    return Segment(
        id=0,
        seek=seek,
        start=start,
        end=end,
        text="",
        tokens=tuple(tokens),
        temperature=0.0,
        avg_logprob=-0.2,
        compression_ratio=1.2,
        no_speech_prob=0.01,
    )


def test_words_are_monotonic_and_inside_their_segments():
    ts = 1000  # timestamp_begin of this made-up vocabulary
    segments = [segment(0.0, 2.0, [ts, 1, 2, 3, ts + 100]), segment(2.0, 4.0, [ts + 100, 4, 5, ts + 200])]
    alignment = [
        timing(" a", 0.1, 0.6),
        timing(" b", 0.6, 1.2),
        timing(" c", 1.1, 2.3),  # c overlaps b and the end
        timing(" d", 2.3, 3.0),
        timing(" e", 3.0, 4.6),  # e runs past its segment's end by > 0.5 s
    ]
    out = attach_words(segments, alignment, window_start=10.0, last_speech_end=10.0, timestamp_begin=ts)
    all_words = [w for s in out for w in s.words]
    assert [w.word for w in all_words] == [" a", " b", " c", " d", " e"]
    for s in out:
        for w in s.words:
            assert s.start <= w.start <= w.end <= s.end
    starts = [w.start for w in all_words]
    ends = [w.end for w in all_words]
    assert starts == sorted(starts) and ends == sorted(ends)
    assert out[0].start == pytest.approx(10.1)  # the segment now starts where its first word does
