"""Host decoder steps read a window's audio keys and values from one copy on huge pages
(whisper/host_audio.py): the same logits bit for bit as reading the MLX arrays, one copy per
window kept while its cache lives, none for caches too small or too large to pay."""

from __future__ import annotations

import gc

import mlx.core as mx
import numpy as np
import pytest
from model_helpers import random_mel, random_model, tiny_dims

from mlx_audio_coreml.cpu import host_math
from mlx_audio_coreml.whisper import host_audio
from mlx_audio_coreml.whisper.sampling import repeat_rows

pytestmark = pytest.mark.skipif(not host_math.available(mx.float32), reason="the host path needs MLX on the CPU")


def _steps(model, features, beams: int) -> tuple[list[np.ndarray], int]:
    """A prefill then three steps of `beams` rows sharing one audio row: each step's logits, and
    how many audio copies the decoder held during the last step."""
    _, cache, _ = model.decoder(mx.array([[1, 2, 3]], dtype=mx.int32), features)
    cache = [(repeat_rows(self_kv, beams), cross) for self_kv, cross in cache]
    out = []
    for token in (4, 7, 9):
        tokens = mx.array([[token + row] for row in range(beams)], dtype=mx.int32)
        logits, cache, _ = model.decoder(tokens, features, cache, scores=False)
        out.append(np.array(logits))
    return out, len(model.decoder.host_weights.audio)


def _window(model, features, tokens: tuple[int, ...] = (3,)) -> list:
    """A prefill and a step per token; the cache."""
    _, cache, _ = model.decoder(mx.array([[1, 2]], dtype=mx.int32), features)
    for token in tokens:
        _, cache, _ = model.decoder(mx.array([[token]], dtype=mx.int32), features, cache)
    return cache


@pytest.mark.parametrize("int8", [False, True])
@pytest.mark.parametrize("beams", [1, 3])
def test_copied_audio_gives_the_same_logits_bit_for_bit(
    int8: bool, beams: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = random_model(tiny_dims())
    model.decoder.host_int8 = int8
    features = model.encoder(random_mel(model.dims))
    monkeypatch.setattr(host_audio, "_HUGE_PAGES_FROM", 0)  # the tiny model's keys are a few KB
    logits = {}
    for enabled in (False, True):
        monkeypatch.setattr(host_audio, "_ENABLED", enabled)
        logits[enabled], copies = _steps(model, features, beams)
        assert copies == int(enabled)
    for copied, read_in_place in zip(logits[True], logits[False], strict=True):
        np.testing.assert_array_equal(copied, read_in_place)


def test_one_copy_per_window_kept_while_its_cache_lives(monkeypatch: pytest.MonkeyPatch) -> None:
    model = random_model(tiny_dims())
    features = model.encoder(random_mel(model.dims))
    monkeypatch.setattr(host_audio, "_HUGE_PAGES_FROM", 0)
    cache = _window(model, features)
    copies = model.decoder.host_weights.audio
    [first] = copies.values()
    _, cache, _ = model.decoder(mx.array([[4]], dtype=mx.int32), features, cache)
    assert list(copies.values()) == [first]  # later steps of the window reuse it
    pairs = first.pairs
    assert pairs[0][0].base is not None and pairs[0][0].base is pairs[-1][1].base  # one buffer for every layer
    np.testing.assert_array_equal(pairs[0][0], np.array(cache[0][1][0]))
    other = _window(model, model.encoder(random_mel(model.dims, seed=5)))
    assert len(copies) == 2  # two windows decoding at once (two transcriptions of one model): one each
    (newer,) = [c for c in copies.values() if c is not first]
    np.testing.assert_array_equal(newer.pairs[1][1], np.array(other[1][1][1]))
    del cache
    gc.collect()
    assert list(copies.values()) == [newer]  # the first window's arrays are gone, and so is its copy


@pytest.mark.parametrize("limits", [(1 << 30, 1 << 31), (0, 16)])
def test_no_copy_when_it_would_not_pay(limits: tuple[int, int], monkeypatch: pytest.MonkeyPatch) -> None:
    """Below numpy's huge-page size nothing is gained; above the cap the copy costs too much memory."""
    model = random_model(tiny_dims())
    features = model.encoder(random_mel(model.dims))
    monkeypatch.setattr(host_audio, "_HUGE_PAGES_FROM", limits[0])
    monkeypatch.setattr(host_audio, "_MAX_BYTES", limits[1])
    _cache = _window(model, features)
    assert len(model.decoder.host_weights.audio) == 0
