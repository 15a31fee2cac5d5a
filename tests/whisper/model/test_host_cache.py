"""The CPU host decoder's self-attention cache (whisper/host_cache.py): rows appended in place, value
semantics kept (beam search's in-place reorder makes older values raise instead of reading moved rows),
and many host steps equal to the MLX decoder step by step (greedy and beams)."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import mlx.core as mx
import numpy as np
import pytest
from model_helpers import random_mel, random_model, tiny_dims

from mlx_audio_coreml.cpu import host_math
from mlx_audio_coreml.errors import StaleCache
from mlx_audio_coreml.whisper.host_cache import HostKV
from mlx_audio_coreml.whisper.model import kv_cache_length, reorder_kv_cache
from mlx_audio_coreml.whisper.sampling import DecoderStep, repeat_rows


def _rows(rng: np.random.Generator, batch: int, length: int) -> np.ndarray:
    return rng.standard_normal((batch, 2, length, 3)).astype(np.float32)


def test_appended_rows_follow_the_cached_ones_and_the_buffer_is_reused():
    rng = np.random.default_rng(0)
    first, more = _rows(rng, 2, 5), [_rows(rng, 2, 1) for _ in range(100)]
    kv = HostKV.from_rows(first, limit=448)
    storage = kv._buffer
    for row in more:
        kv = kv.appended(row, limit=448)
    np.testing.assert_array_equal(kv.view(), np.concatenate([first, *more], axis=2))
    assert kv.shape == (2, 2, 105, 3)
    assert kv._buffer is not storage and kv._buffer.data.shape[2] >= 105  # grew (doubling) past its first room
    grown = kv._buffer
    assert kv.appended(more[0], limit=448)._buffer is grown  # room left: written in place


def test_stepping_twice_from_one_cache_keeps_both_results():
    rng = np.random.default_rng(1)
    base = HostKV.from_rows(_rows(rng, 1, 4), limit=448)
    a_row, b_row = _rows(rng, 1, 1), _rows(rng, 1, 1)
    a = base.appended(a_row, limit=448)
    b = base.appended(b_row, limit=448)  # same starting point: must not overwrite a's new row
    np.testing.assert_array_equal(a.view()[:, :, 4:], a_row)
    np.testing.assert_array_equal(b.view()[:, :, 4:], b_row)
    np.testing.assert_array_equal(base.view(), a.view()[:, :, :4])


def test_room_never_passes_the_limit_unless_rows_need_it():
    rng = np.random.default_rng(2)
    kv = HostKV.from_rows(_rows(rng, 1, 10), limit=12)
    assert kv._buffer.data.shape[2] == 12
    kv = kv.appended(_rows(rng, 1, 2), limit=12).appended(_rows(rng, 1, 1), limit=12)
    assert kv.shape[2] == 13  # the decoder refuses this before; the cache itself still holds the rows


def test_rows_picked_and_repeated_are_copies_in_the_asked_order():
    rng = np.random.default_rng(3)
    rows = _rows(rng, 3, 6)
    kv = HostKV.from_rows(rows, limit=448)
    np.testing.assert_array_equal(kv[mx.array([2, 2, 0])].view(), rows[[2, 2, 0]])
    np.testing.assert_array_equal(repeat_rows(kv, 2).view(), np.repeat(rows, 2, axis=0))
    np.testing.assert_array_equal(np.array(kv.to_mlx()), rows)
    np.testing.assert_array_equal(np.array(mx.array(kv)), rows)  # as an MLX cache entry converts


def test_moving_rows_in_place_equals_picking_them_for_every_mapping_of_four_rows():
    rng = np.random.default_rng(5)
    rows = _rows(rng, 4, 7)
    for index in itertools.product(range(4), repeat=4):  # duplicates, swaps, cycles, identity
        kv = HostKV.from_rows(rows, limit=448).appended(_rows(rng, 4, 1), limit=448)
        expected = kv.view()[list(index)].copy()
        moved = kv.moved(mx.array(index))
        np.testing.assert_array_equal(moved.view(), expected)
        assert moved._buffer is kv._buffer  # in place: no new buffer


def test_a_value_older_than_a_move_raises_instead_of_reading_moved_rows():
    rng = np.random.default_rng(6)
    before = HostKV.from_rows(_rows(rng, 3, 5), limit=448)
    newest = before.appended(_rows(rng, 3, 1), limit=448)
    moved = newest.moved([1, 1, 0])
    for stale in (before, newest):
        with pytest.raises(StaleCache):
            stale.view()
        with pytest.raises(StaleCache):
            stale.appended(_rows(rng, 3, 1), limit=448)
    assert moved.appended(_rows(rng, 3, 1), limit=448).shape == (3, 2, 7, 3)


def test_moving_an_older_value_or_keeping_every_row_leaves_others_readable():
    rng = np.random.default_rng(7)
    base = HostKV.from_rows(_rows(rng, 2, 5), limit=448)
    newer = base.appended(_rows(rng, 2, 1), limit=448)
    picked = base.moved([1, 0])  # not the buffer's newest: a copy
    np.testing.assert_array_equal(picked.view(), base.view()[[1, 0]])
    np.testing.assert_array_equal(newer.moved([0, 1]).view(), newer.view())  # nothing moves: still live
    np.testing.assert_array_equal(newer.view()[:, :, :5], base.view())


def test_decoder_step_reorder_moves_host_rows_and_gathers_mlx_ones():
    rng = np.random.default_rng(8)
    host = HostKV.from_rows(_rows(rng, 3, 4), limit=448)
    plain = mx.array(_rows(rng, 3, 4))
    cross = (mx.zeros((1, 2, 3, 4)), mx.zeros((1, 2, 4, 3)))
    expected = (host.view()[[2, 0, 0]].copy(), np.array(plain)[[2, 0, 0]])
    step = DecoderStep(SimpleNamespace(decoder=None), mx.zeros((3, 4, 6)))  # reorder needs neither
    (self_kv, kept_cross), none_layer = step.reorder([((host, plain), cross), (None, cross)], mx.array([2, 0, 0]))
    np.testing.assert_array_equal(self_kv[0].view(), expected[0])
    np.testing.assert_array_equal(np.array(self_kv[1]), expected[1])
    assert kept_cross is cross and none_layer == (None, cross)
    same = [((self_kv[0], self_kv[1]), cross)]
    assert step.reorder(same, mx.array([0, 1, 2])) is same  # every beam in its own row: nothing to do


def _plain_step(model, tokens, features, cache):
    with host_math.disabled():
        return model.decoder(tokens, features, cache)


def test_host_steps_with_a_growing_cache_match_mlx_and_hand_over_to_the_mlx_path():
    model = random_model(tiny_dims(n_audio_ctx=40, n_text_ctx=48))
    features = mx.repeat(model.encoder(random_mel(model.dims)), 3, axis=0)  # three beams of one window
    _, host_cache, _ = model.decoder(mx.array([[3, 1, 4]]), features[:1])  # host prefill (batch 1)
    plain_cache = host_cache
    host_cache, plain_cache = repeat_rows(host_cache, 3), repeat_rows(plain_cache, 3)
    rng = np.random.default_rng(4)
    for step in range(20):
        tokens = mx.array(rng.integers(0, 300, (3, 1)), dtype=mx.int32)
        host_logits, host_cache, _ = model.decoder(tokens, features, host_cache)
        plain_logits, plain_cache, _ = _plain_step(model, tokens, features, plain_cache)
        np.testing.assert_allclose(np.array(host_logits), np.array(plain_logits), atol=5e-5, rtol=1e-4)
        assert isinstance(host_cache[0][0][0], HostKV) and kv_cache_length(host_cache) == 4 + step
        if step % 3 == 2:  # beam search keeps some beams
            rows = mx.array(rng.integers(0, 3, 3), dtype=mx.int32)
            host_cache = DecoderStep(model, features).reorder(host_cache, rows)  # in place
            plain_cache = reorder_kv_cache(plain_cache, rows, same_audio_rows=True)
    tokens = mx.array([[7, 8], [9, 10], [11, 12]], dtype=mx.int32)  # two at once: the MLX path takes the host cache
    host_logits, _, _ = model.decoder(tokens, features, host_cache)
    plain_logits, _, _ = _plain_step(model, tokens, features, plain_cache)
    np.testing.assert_allclose(np.array(host_logits), np.array(plain_logits), atol=5e-5, rtol=1e-4)
