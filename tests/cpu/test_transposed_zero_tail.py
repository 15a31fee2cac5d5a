"""Transposed convolutions skip an input's zero tail (a bucket's padded frames) without changing a value."""

from __future__ import annotations

import numpy as np
import pytest

from mlx_audio_coreml.cpu import conv1d


@pytest.mark.parametrize("stride,kernel,crop", [(2, 4, (1, 1)), (3, 7, (2, 2)), (10, 20, (5, 5)), (1, 3, (0, 0))])
def test_depthwise_transpose_with_live_rows_equals_the_full_computation(stride, kernel, crop):
    rng = np.random.default_rng(kernel)
    channels, length, live = 6, 40, 23
    weight = rng.standard_normal((channels, 1, kernel)).astype(np.float32)
    bias = rng.standard_normal(channels).astype(np.float32)
    x = rng.standard_normal((length, channels)).astype(np.float32)
    x[live:] = 0.0  # the padded frames of a bucketed program
    conv = conv1d.DepthwiseTranspose1d(weight, bias, stride)
    full = conv(x, crop)
    assert conv1d.nonzero_rows(x) == live
    skipped = conv(x, crop, out=np.full_like(full, np.nan), live=conv1d.nonzero_rows(x))
    np.testing.assert_array_equal(skipped, full)  # zero rows add exactly zero: the same bits


def test_depthwise_transpose_with_a_live_prefix_ignores_the_rows_after_it():
    """`live` is trusted: rows past it are not read (the caller proved them zero)."""
    weight = np.ones((2, 1, 2), np.float32)
    x = np.ones((4, 2), np.float32)
    conv = conv1d.DepthwiseTranspose1d(weight, None, 1)
    only_first = conv(x, (0, 0), live=1)
    np.testing.assert_array_equal(only_first[:, 0], [1, 1, 0, 0, 0])
