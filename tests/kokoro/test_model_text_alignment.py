"""Durations from logits and the token-to-frame alignment, against hexgrad's formulas in numpy."""

from __future__ import annotations

import mlx.core as mx
import numpy as np

from mlx_audio_coreml.kokoro.model.alignment import alignment_matrix, durations_from_logits, expand, frame_tokens


def _logits_for_sums(sums: list[float], bins: int = 8) -> np.ndarray:
    """(1, T, bins) logits whose sigmoids sum to `sums` per token (every bin equal)."""
    p = np.asarray(sums, np.float64) / bins
    return np.repeat(np.log(p / (1 - p))[None, :, None], bins, axis=2).astype(np.float32)


def test_durations_round_sum_of_sigmoids_and_clamp_to_one() -> None:
    logits = _logits_for_sums([0.2, 2.4, 3.6, 5.0, 0.6])
    got = np.array(durations_from_logits(mx.array(logits), speed=1.0))
    np.testing.assert_array_equal(got, [1, 2, 4, 5, 1])
    assert got.dtype == np.int32


def test_durations_divide_by_speed_before_rounding() -> None:
    logits = _logits_for_sums([3.0, 4.6, 1.2])
    np.testing.assert_array_equal(np.array(durations_from_logits(mx.array(logits), speed=2.0)), [2, 2, 1])
    np.testing.assert_array_equal(np.array(durations_from_logits(mx.array(logits), speed=0.5)), [6, 9, 2])


def test_durations_match_numpy_on_random_logits() -> None:
    logits = np.random.default_rng(0).standard_normal((1, 40, 50)).astype(np.float32) * 3
    sums = 1 / (1 + np.exp(-logits.astype(np.float64)))
    want = np.maximum(np.round(sums.sum(-1)[0] / 1.3), 1)
    np.testing.assert_array_equal(np.array(durations_from_logits(mx.array(logits), 1.3)), want)


def test_alignment_matrix_has_one_one_per_frame_in_token_order() -> None:
    durations = mx.array([2, 1, 3], dtype=mx.int32)
    want = np.array([[1, 1, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]], np.float32)
    np.testing.assert_array_equal(np.array(alignment_matrix(durations)), want)
    np.testing.assert_array_equal(np.array(frame_tokens(durations)), [0, 0, 1, 2, 2, 2])


def test_expand_equals_product_with_alignment_matrix() -> None:
    rng = np.random.default_rng(1)
    durations = mx.array(rng.integers(1, 6, size=9), dtype=mx.int32)
    x = rng.standard_normal((1, 9, 5)).astype(np.float32)
    via_matrix = x.transpose(0, 2, 1) @ np.array(alignment_matrix(durations))  # hexgrad: (B, C, T) @ (T, F)
    got = np.array(expand(mx.array(x), frame_tokens(durations)))
    np.testing.assert_array_equal(got.transpose(0, 2, 1), via_matrix)
