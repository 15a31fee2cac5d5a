"""Beam search's top-k selection (whisper/top_tokens.py, and its C kernel with the normalizers)
equals a stable sort of the whole row: the same ids in the same order, on random, tie-heavy and
mostly -inf rows, big and small vocabularies."""

from __future__ import annotations

import numpy as np
import pytest

from mlx_audio_coreml.cpu import native_kernels
from mlx_audio_coreml.whisper.sampling import log_normalizers
from mlx_audio_coreml.whisper.top_tokens import DEPTH, top_k


def _stable(rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(-rows, axis=-1, kind="stable")[:, :k]
    return order, np.take_along_axis(rows, order, axis=-1)


def _rows(kind: str, rng: np.random.Generator, batch: int, vocab: int) -> np.ndarray:
    if kind == "random":
        return (rng.standard_normal((batch, vocab)) * 4).astype(np.float32)
    if kind == "few values":  # ties everywhere, also between block maxima
        return rng.integers(-2, 3, (batch, vocab)).astype(np.float32)
    if kind == "mostly -inf":  # heavy filtering: a few allowed tokens, some tied
        rows = np.full((batch, vocab), -np.inf, np.float32)
        for row in rows:
            allowed = rng.integers(0, vocab, int(rng.integers(0, 9)))
            row[allowed] = rng.integers(0, 3, len(allowed))
        return rows
    rows = (rng.standard_normal((batch, vocab)) * 4).astype(np.float32)  # "tied top": the best value repeated
    rows[:, rng.integers(0, vocab, 5)] = rows.max() + 1
    return rows


@pytest.mark.parametrize("kind", ["random", "few values", "mostly -inf", "tied top"])
@pytest.mark.parametrize("vocab", [51864, 51865, DEPTH * 40, DEPTH * 40 + 3, 50])
def test_top_k_equals_a_stable_sort_of_the_whole_row(kind, vocab):
    rng = np.random.default_rng(vocab)
    for k in (1, 2, 6, 11):
        rows = _rows(kind, rng, int(rng.integers(1, 9)), vocab)
        ids, values = top_k(rows, k)
        expected_ids, expected_values = _stable(rows, k)
        np.testing.assert_array_equal(ids, expected_ids)
        np.testing.assert_array_equal(values, expected_values)
        assert values.dtype == rows.dtype


def test_top_k_of_an_all_minus_inf_row_is_its_first_ids():
    ids, values = top_k(np.full((2, 51864), -np.inf, np.float32), 6)
    np.testing.assert_array_equal(ids, [list(range(6))] * 2)
    assert np.isneginf(values).all()


def test_rows_with_nan_rank_it_last_as_a_stable_sort_does():
    rng = np.random.default_rng(2)
    rows = (rng.standard_normal((4, 51864)) * 4).astype(np.float32)
    rows[0, rng.integers(0, 51864, 40)] = np.nan  # NaN beside large values in their blocks
    rows[0, 7] = 100.0
    rows[1, -3] = np.nan  # in the tail
    rows[2] = np.nan
    rows[2, [5, 9]] = [1.0, 2.0]  # fewer than k numbers: NaN fills the rest
    for k in (1, 6):
        ids, values = top_k(rows, k)
        expected_ids, expected_values = _stable(rows, k)
        np.testing.assert_array_equal(ids, expected_ids)
        np.testing.assert_array_equal(values, expected_values)  # NaN compares equal here


def test_top_k_reads_a_non_contiguous_batch():
    rows = (np.random.default_rng(1).standard_normal((6, 51864)) * 4).astype(np.float32)[::2]
    ids, _ = top_k(rows, 6)
    np.testing.assert_array_equal(ids, _stable(rows, 6)[0])


needs_kernels = pytest.mark.skipif(not native_kernels.available(), reason="libmacb_cpu is not built (no C compiler)")


@needs_kernels
@pytest.mark.parametrize("kind", ["random", "few values", "mostly -inf", "tied top"])
@pytest.mark.parametrize("vocab", [51864, 51865, 50, 17])
def test_the_c_candidates_are_a_stable_sorts_and_their_normalizers_the_kernels(kind, vocab):
    """macb_cpu_top_logprobs: the ids and values of `top_k` and the normalizers of
    `sampling.log_normalizers` given each row's largest value, the same bits."""
    rng = np.random.default_rng(vocab + 1)
    for k in (1, 2, 6, 11):
        rows = _rows(kind, rng, int(rng.integers(1, 9)), vocab)
        found = native_kernels.top_logprobs(rows, k)
        assert found is not None
        ids, values, normalizers = found
        expected_ids, expected_values = _stable(rows, k)
        np.testing.assert_array_equal(ids, expected_ids)
        np.testing.assert_array_equal(values, expected_values)
        with np.errstate(invalid="ignore", divide="ignore"):
            np.testing.assert_array_equal(normalizers, log_normalizers(rows, maxima=expected_values[:, 0]))


@needs_kernels
def test_the_c_candidates_leave_nan_rows_and_odd_sizes_to_numpy():
    rows = (np.random.default_rng(3).standard_normal((3, 51864)) * 4).astype(np.float32)
    rows[1, 40_000] = np.nan
    assert native_kernels.top_logprobs(rows, 6) is None
    assert native_kernels.top_logprobs(rows[:, :5], 6) is None  # fewer tokens than candidates
    assert native_kernels.top_logprobs(rows, native_kernels.MAX_TOP + 1) is None
    ids, _, _ = native_kernels.top_logprobs(rows[::2], 6)  # strided rows
    np.testing.assert_array_equal(ids, _stable(rows[::2], 6)[0])
