"""The host prefill (whisper/host_prefill.py): a long prompt's attention goes head by head through
oneDNN on the workers, and still returns what the MLX decoder returns; a prompt's cache alone is the
prefill's."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
from model_helpers import random_mel, random_model, tiny_dims

from mlx_audio_coreml.cpu import host_math, onednn
from mlx_audio_coreml.errors import ShapeConversionFailed
from mlx_audio_coreml.whisper import host_prefill


@pytest.mark.skipif(not onednn.available(), reason="oneDNN not installed")
def test_a_prompt_through_attention_head_by_head_matches_mlx(monkeypatch):
    monkeypatch.setattr(host_prefill, "_FEW_ROWS", 0)  # every product takes the oneDNN route
    model = random_model(tiny_dims(n_audio_ctx=40, n_text_ctx=48))
    features = model.encoder(random_mel(model.dims))
    tokens = mx.array(np.random.default_rng(5).integers(0, 300, (1, 30)), dtype=mx.int32)
    host = model.decoder(tokens, features)
    with host_math.disabled():
        plain = model.decoder(tokens, features)
    np.testing.assert_allclose(np.array(host[0]), np.array(plain[0]), atol=5e-5, rtol=1e-4)
    for ours, reference in zip(host[2], plain[2], strict=True):  # word-timing scores
        np.testing.assert_allclose(np.array(ours), np.array(reference), atol=5e-5, rtol=1e-4)


@pytest.mark.parametrize("masked", [False, True])
def test_attention_head_by_head_equals_numpy_for_plain_and_transposed_keys(masked: bool, monkeypatch):
    monkeypatch.setattr(host_prefill, "_FEW_ROWS", 0)  # every head through oneDNN on the workers
    rng = np.random.default_rng(6)
    q, keys, values = (rng.standard_normal(shape).astype(np.float32) for shape in ((3, 9, 5), (3, 9, 5), (3, 9, 5)))
    mask = host_prefill._causal(9) if masked else None
    scores = np.matmul(q, keys.transpose(0, 2, 1)) + (0 if mask is None else mask)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    expected = np.matmul(weights / weights.sum(-1, keepdims=True), values)
    got = host_prefill._attend_heads(q, keys, values, keys_transposed=False, mask=mask)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    keys_t = np.ascontiguousarray(keys.transpose(0, 2, 1))
    got = host_prefill._attend_heads(q, keys_t, values, keys_transposed=True, mask=mask)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("positions", [40, 300, 1500])
def test_audio_heads_are_exact_plain_copies_of_each_heads_keys_and_values(positions: int) -> None:
    """The keys' transposing copy goes in pieces of positions (a last piece shorter)."""
    rng = np.random.default_rng(positions)
    kv = rng.standard_normal((positions, 3 * 2 * 24)).astype(np.float32)[:, 48:96]  # a layer's block of a wider product
    k_t, v = host_prefill._audio_heads(kv, heads=4)
    assert k_t.flags.c_contiguous and v.flags.c_contiguous
    np.testing.assert_array_equal(k_t, kv[:, :24].reshape(positions, 4, 6).transpose(1, 2, 0))
    np.testing.assert_array_equal(v, kv[:, 24:].reshape(positions, 4, 6).transpose(1, 0, 2))


@pytest.mark.parametrize("int8", [False, True])
def test_a_prompts_cache_alone_is_the_prefills_cache_bit_for_bit(int8: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """`prompt_cache` stops the last block at its keys and values and makes no logits: the cache is
    still every value `prefill` gives, and the last block's cross-attention and MLP never run."""
    if int8 and not onednn.available():
        pytest.skip("oneDNN not installed")
    model = random_model(tiny_dims(n_audio_ctx=40))
    model.decoder.host_int8 = int8
    features = model.encoder(random_mel(model.dims))
    tokens = mx.array([[3, 1, 4, 1, 5, 9, 2, 6, 5, 3]])
    _, expected, _ = model.decoder(tokens, features)
    last = model.decoder.host_weights.layers[-1]
    calls: list[int] = []
    for name in ("cross_q", "mlp1"):  # the last block's cross-attention and MLP
        real = getattr(last, name)
        monkeypatch.setattr(last, name, lambda *args, real=real: calls.append(1) or real(*args))
    got = model.decoder.prompt_cache(tokens, features)
    assert calls == []
    assert len(got) == len(expected)
    for (got_self, got_cross), (want_self, want_cross) in zip(got, expected, strict=True):
        for ours, reference in (*zip(got_self, want_self), *zip(got_cross, want_cross)):
            np.testing.assert_array_equal(np.array(ours), np.array(reference))


def test_without_the_host_path_a_prompts_cache_is_mlxs() -> None:
    model = random_model(tiny_dims(n_audio_ctx=40))
    features = model.encoder(random_mel(model.dims))
    tokens = mx.array([[3, 1, 4, 1, 5]])
    with host_math.disabled():
        got = model.decoder.prompt_cache(tokens, features)
        expected = model.decoder(tokens, features)[1]
    for (got_self, got_cross), (want_self, want_cross) in zip(got, expected, strict=True):
        for ours, reference in (*zip(got_self, want_self), *zip(got_cross, want_cross)):
            np.testing.assert_array_equal(np.array(ours), np.array(reference))


@pytest.mark.parametrize("on_host", [True, False])
def test_a_prompt_longer_than_the_context_is_refused_with_a_typed_error(on_host: bool) -> None:
    model = random_model(tiny_dims(n_audio_ctx=40, n_text_ctx=8))
    features = model.encoder(random_mel(model.dims))
    tokens = mx.array([[1] * 9])
    with pytest.raises(ShapeConversionFailed, match="decoder context"):
        if on_host:
            model.decoder.prompt_cache(tokens, features)
        else:
            with host_math.disabled():
                model.decoder.prompt_cache(tokens, features)
