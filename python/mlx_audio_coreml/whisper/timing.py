"""Word timestamps: align text tokens to audio frames through the decoder's cross-attention.

A few "alignment heads" of the decoder attend to the audio frame being spoken. Their attention
over one window (softmax, normalized per frame, median-filtered along time, averaged) is a
(tokens x frames) similarity; dynamic time warping finds the monotonic path through it that
collects the most, and each word starts where the path first reaches its first token.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import mlx.core as mx
import numpy as np

from .audio import TOKENS_PER_SECOND
from .segments import Segment, Word

PREPEND_PUNCTUATIONS = "\"'“¿([{-"
APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、"
SENTENCE_END_MARKS = ".。!！?？"


@dataclass
class WordTiming:
    """One word as aligned in a window: seconds from the window's start (mutable while merging)."""

    word: str
    tokens: list[int]
    start: float
    end: float
    probability: float


def median_filter(x: np.ndarray, width: int) -> np.ndarray:
    """Median over a sliding window of odd `width` along the last axis, edges reflected."""
    if width <= 1 or x.shape[-1] == 0:
        return x
    if width % 2 == 0:
        raise ValueError(f"median filter width must be odd, got {width}")
    pad = width // 2
    mode = "reflect" if x.shape[-1] > pad else "edge"
    padded = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(pad, pad)], mode=mode)
    windows = np.lib.stride_tricks.sliding_window_view(padded, width, axis=-1)  # (..., N, width)
    return np.median(windows, axis=-1)


def dtw(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The cheapest monotonic path through `cost` (N, M) from (0, 0) to (N-1, M-1).

    Moves are diagonal, down (next row, same column) or right (same row, next column); ties
    prefer diagonal, then down. Returns the path's row indices and column indices. The table is
    filled one anti-diagonal at a time, so each numpy call handles a whole diagonal.
    """
    n_rows, n_cols = cost.shape
    total = np.full((n_rows + 1, n_cols + 1), np.inf, dtype=np.float64)
    move = np.zeros((n_rows + 1, n_cols + 1), dtype=np.int8)  # 0 diagonal, 1 down, 2 right
    total[0, 0] = 0.0
    for diagonal in range(2, n_rows + n_cols + 1):
        i = np.arange(max(1, diagonal - n_cols), min(n_rows, diagonal - 1) + 1)
        j = diagonal - i
        diag, down, right = total[i - 1, j - 1], total[i - 1, j], total[i, j - 1]
        pick = np.where((diag < down) & (diag < right), 0, np.where((down < diag) & (down < right), 1, 2))
        best = np.choose(pick, [diag, down, right])
        total[i, j] = cost[i - 1, j - 1] + best
        move[i, j] = pick
    return _backtrace(move)


def _backtrace(move: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    i, j = move.shape[0] - 1, move.shape[1] - 1
    move[0, :] = 2  # along the edges only one move is possible
    move[:, 0] = 1
    path = []
    while i > 0 or j > 0:
        path.append((i - 1, j - 1))
        step = move[i, j]
        if step == 0:
            i, j = i - 1, j - 1
        elif step == 1:
            i -= 1
        else:
            j -= 1
    rows, cols = np.array(path[::-1]).T
    return rows, cols


def alignment_matrix(
    cross_qk: Sequence[mx.array],
    heads: np.ndarray,
    n_frames: int,
    medfilt_width: int = 7,
) -> np.ndarray:
    """The alignment heads' attention (tokens, n_frames // 2): softmax over the window's real frames,
    standardized along tokens, median-filtered along time and averaged over heads."""
    weights = mx.stack([cross_qk[layer][0, head] for layer, head in heads])  # (K, T, n_ctx)
    weights = mx.softmax(weights[:, :, : n_frames // 2].astype(mx.float32), axis=-1)
    w = np.array(weights)
    w = (w - w.mean(axis=-2, keepdims=True)) / (w.std(axis=-2, keepdims=True) + 1e-10)
    return median_filter(w, medfilt_width).mean(axis=0)  # (T, frames)


def find_alignment(
    model: Any,
    tokenizer: Any,
    sot_sequence: Sequence[int],
    text_tokens: Sequence[int],
    audio_features: mx.array,
    n_frames: int,
    medfilt_width: int = 7,
) -> list[WordTiming]:
    """Word timings (seconds from the window's start) of `text_tokens` in one window's audio."""
    if not text_tokens:
        return []
    tokens = [*sot_sequence, tokenizer.no_timestamps, *text_tokens, tokenizer.eot]
    logits, _, cross_qk = model.decoder(mx.array([tokens], dtype=mx.int32), audio_features)
    # probability of each text token where it was predicted (one position earlier)
    first = len(sot_sequence)
    text_logits = logits[0, first : first + len(text_tokens), : tokenizer.eot]
    probs = mx.softmax(text_logits, axis=-1)
    token_probs = np.array(mx.take_along_axis(probs, mx.array(list(text_tokens))[:, None], axis=-1)[:, 0])
    heads = np.array(model.alignment_heads).reshape(-1, 2)
    matrix = alignment_matrix(cross_qk, heads, n_frames, medfilt_width)[first:-1]  # rows predicting text + EOT
    text_index, time_index = dtw(-matrix)

    words, word_tokens = tokenizer.split_to_word_tokens(list(text_tokens) + [tokenizer.eot])
    if len(word_tokens) <= 1:
        return []
    boundaries = np.concatenate([[0], np.cumsum([len(t) for t in word_tokens[:-1]])])
    jumps = np.diff(text_index, prepend=-1) > 0  # the path's first frame on each token
    jump_times = time_index[jumps] / TOKENS_PER_SECOND
    return [
        WordTiming(word, list(toks), float(jump_times[a]), float(jump_times[b]), float(np.mean(token_probs[a:b])))
        for word, toks, a, b in zip(words[:-1], word_tokens[:-1], boundaries[:-1], boundaries[1:])
    ]


def merge_punctuations(
    alignment: list[WordTiming],
    prepended: str = PREPEND_PUNCTUATIONS,
    appended: str = APPEND_PUNCTUATIONS,
) -> None:
    """Attach opening marks to the next word and closing marks to the previous one, in place;
    a merged-away entry keeps its slot with an empty word and no tokens."""
    target = len(alignment) - 1
    for i in range(len(alignment) - 2, -1, -1):
        mark, word = alignment[i], alignment[target]
        if mark.word.startswith(" ") and mark.word.strip() in prepended:
            word.word, word.tokens = mark.word + word.word, mark.tokens + word.tokens
            mark.word, mark.tokens = "", []
        else:
            target = i
    target = 0
    for j in range(1, len(alignment)):
        word, mark = alignment[target], alignment[j]
        if not word.word.endswith(" ") and mark.word in appended:
            word.word, word.tokens = word.word + mark.word, word.tokens + mark.tokens
            mark.word, mark.tokens = "", []
        else:
            target = j


def _clip_long_words(alignment: list[WordTiming]) -> float:
    """Shorten words longer than twice the median next to a sentence end; returns the median."""
    durations = np.array([w.end - w.start for w in alignment])
    durations = durations[durations > 0]
    median = min(0.7, float(np.median(durations))) if len(durations) else 0.0
    longest = 2 * median
    for previous, word in zip(alignment, alignment[1:]):
        if longest and word.end - word.start > longest:
            if word.word in SENTENCE_END_MARKS:
                word.end = word.start + longest
            elif previous.word in SENTENCE_END_MARKS:
                word.start = word.end - longest
    return median


def attach_words(
    segments: Sequence[Segment],
    alignment: list[WordTiming],
    window_start: float,
    last_speech_end: float,
    timestamp_begin: int,
    prepended: str = PREPEND_PUNCTUATIONS,
    appended: str = APPEND_PUNCTUATIONS,
) -> list[Segment]:
    """Give each segment of one window its words (absolute seconds), keeping every word inside its
    segment and in order; segment bounds move to the words when the words are more precise."""
    median = _clip_long_words(alignment)
    longest = 2 * median
    merge_punctuations(alignment, prepended, appended)
    out: list[Segment] = []
    index = 0
    for segment in segments:
        words: list[Word] = []
        used = 0
        n_text = sum(1 for t in segment.tokens if t < timestamp_begin)
        while index < len(alignment) and used < n_text:
            timing = alignment[index]
            if timing.word:
                start, end = window_start + timing.start, window_start + timing.end
                words.append(Word(round(start, 3), round(end, 3), timing.word, timing.probability))
            used += len(timing.tokens)
            index += 1
        if not words:
            out.append(replace(segment, words=()))
            continue
        start, end, words = _fit_segment(segment, words, median, longest, last_speech_end)
        last_speech_end = end
        out.append(replace(segment, start=start, end=end, words=tuple(_ordered(words, start, end))))
    return out


def _fit_segment(
    segment: Segment,
    words: list[Word],
    median: float,
    longest: float,
    last_speech_end: float,
) -> tuple[float, float, list[Word]]:
    """openai-whisper's boundary rules: a first word after a pause may not be implausibly long, and
    the segment's own timestamps win over a first or last word that overruns them by 0.5 s."""
    first = words[0]
    too_long_after_pause = first.end - last_speech_end > 4 * median and (
        first.end - first.start > longest or (len(words) > 1 and words[1].end - first.start > 2 * longest)
    )
    if too_long_after_pause:
        if len(words) > 1 and words[1].end - words[1].start > longest:
            boundary = max(words[1].end / 2, words[1].end - longest)
            first = replace(first, end=boundary)
            words[1] = replace(words[1], start=boundary)
        first = replace(first, start=max(0.0, first.end - longest))
    start, end = segment.start, segment.end
    if start < first.end and start - 0.5 > first.start:
        first = replace(first, start=max(0.0, min(first.end - median, start)))
    else:
        start = first.start
    words[0] = first
    last = words[-1]
    if end > last.start and end + 0.5 < last.end:
        words[-1] = replace(last, end=max(last.start + median, end))
    else:
        end = last.end
    return start, max(end, start), words


def _ordered(words: list[Word], start: float, end: float) -> list[Word]:
    """Clamp words into [start, end] and make starts and ends non-decreasing."""
    out: list[Word] = []
    floor = start
    for w in words:
        w_start = min(max(w.start, floor), end)
        w_end = min(max(w.end, w_start), end)
        out.append(replace(w, start=w_start, end=w_end))
        floor = w_end
    return out
