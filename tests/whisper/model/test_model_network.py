"""The MLX Whisper network on tiny random configs: shapes, KV cache, dtypes, the CPU host path."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
from model_helpers import random_mel, random_model, tiny_dims

from mlx_audio_coreml.cpu import host_math
from mlx_audio_coreml.errors import ShapeConversionFailed
from mlx_audio_coreml.whisper.model import Whisper, kv_cache_length, reorder_kv_cache, sinusoids


@pytest.fixture(scope="module")
def model() -> Whisper:
    return random_model(tiny_dims())


def test_encoder_maps_mel_frames_to_half_as_many_states(model):
    dims = model.dims
    features = model.encoder(random_mel(dims, batch=2))
    assert features.shape == (2, dims.n_audio_ctx, dims.n_audio_state)
    assert features.dtype == mx.float32


def test_decoder_returns_logits_cache_and_cross_attention_scores(model):
    dims = model.dims
    features = model.encoder(random_mel(dims, batch=2))
    tokens = mx.array([[1, 2, 3], [4, 5, 6]], dtype=mx.int32)
    logits, cache, cross_qk = model.decoder(tokens, features)
    assert logits.shape == (2, 3, dims.n_vocab) and logits.dtype == mx.float32
    assert len(cache) == dims.n_text_layer and kv_cache_length(cache) == 3
    assert len(cross_qk) == dims.n_text_layer
    assert all(qk.shape == (2, dims.n_text_head, 3, dims.n_audio_ctx) for qk in cross_qk)


def test_incremental_decoding_with_cache_equals_full_decoding(model):
    features = model.encoder(random_mel(model.dims))
    tokens = [7, 42, 3, 99, 150, 12, 5]
    full_logits, _, full_qk = model.decoder(mx.array([tokens]), features)
    logits, cache, qk = model.decoder(mx.array([tokens[:3]]), features)  # a prompt, then one token at a time
    step_logits, step_qk = [logits], [qk]
    for token in tokens[3:]:
        logits, cache, qk = model.decoder(mx.array([[token]]), features, cache)
        step_logits.append(logits)
        step_qk.append(qk)
    assert kv_cache_length(cache) == len(tokens)
    incremental = mx.concatenate(step_logits, axis=1)
    np.testing.assert_allclose(np.array(incremental), np.array(full_logits), atol=2e-5, rtol=1e-4)
    for layer in range(model.dims.n_text_layer):
        stitched = mx.concatenate([q[layer] for q in step_qk], axis=2)
        np.testing.assert_allclose(np.array(stitched), np.array(full_qk[layer]), atol=2e-5, rtol=1e-4)


def test_causal_mask_hides_later_tokens(model):
    features = model.encoder(random_mel(model.dims))
    a, _, _ = model.decoder(mx.array([[5, 6, 7, 8]]), features)
    b, _, _ = model.decoder(mx.array([[5, 6, 9, 10]]), features)
    np.testing.assert_allclose(np.array(a[:, :2]), np.array(b[:, :2]), atol=1e-6)
    assert not np.allclose(np.array(a[:, 2:]), np.array(b[:, 2:]))


def test_reordering_the_cache_follows_the_batch_rows(model):
    features = model.encoder(random_mel(model.dims, batch=3))
    tokens = mx.array([[1, 2], [3, 4], [5, 6]])
    _, cache, _ = model.decoder(tokens, features)
    order = mx.array([2, 2, 0])
    moved = reorder_kv_cache(cache, order)
    next_token = mx.array([[9], [9], [9]])
    logits, _, _ = model.decoder(next_token, features[order], moved)
    expected, _, _ = model.decoder(mx.concatenate([tokens[order], next_token], axis=1), features[order])
    np.testing.assert_allclose(np.array(logits[:, 0]), np.array(expected[:, -1]), atol=2e-5, rtol=1e-4)


def test_float16_model_stays_close_to_float32():
    dims = tiny_dims()
    full, half = random_model(dims, seed=3), random_model(dims, seed=3, dtype=mx.float16)
    mel = random_mel(dims)
    f32, f16 = full.encoder(mel), half.encoder(mel)
    assert f16.dtype == mx.float16
    np.testing.assert_allclose(np.array(f16.astype(mx.float32)), np.array(f32), atol=3e-2, rtol=3e-2)
    tokens = mx.array([[1, 2, 3, 4]])
    l32 = np.array(full.decoder(tokens, f32)[0])
    l16 = np.array(half.decoder(tokens, f16)[0])
    np.testing.assert_allclose(l16, l32, atol=5e-2, rtol=5e-2)
    assert (l16.argmax(-1) == l32.argmax(-1)).mean() >= 0.75


def test_host_path_matches_plain_mlx_ops(model):
    """The numpy softmax/GELU/logits path (CPU, float32) and the plain MLX ops agree."""
    assert host_math.available(mx.float32)  # the test suite runs MLX on the CPU
    mel = random_mel(model.dims)
    tokens = mx.array([[3, 1, 4, 1, 5]])

    def run() -> tuple[mx.array, mx.array, mx.array]:
        features = model.encoder(mel)
        logits, cache, _ = model.decoder(tokens, features)
        step_logits = model.decoder(mx.array([[9]]), features, cache)[0]  # one row: the gemv path
        mx.eval(features, logits, step_logits)
        return features, logits, step_logits

    host = run()
    with host_math.disabled():
        plain = run()
    for ours, reference in zip(host, plain):
        np.testing.assert_allclose(np.array(ours), np.array(reference), atol=2e-5, rtol=1e-4)
    batch = random_mel(model.dims, batch=3, seed=5)
    host_batch = np.array(model.encoder(batch))
    with host_math.disabled():
        np.testing.assert_allclose(host_batch, np.array(model.encoder(batch)), atol=2e-5, rtol=1e-4)


def test_host_path_blocks_long_inputs_the_same_way(monkeypatch):
    """Encoder inputs longer than one block of positions are split and stitched back exactly."""
    model = random_model(tiny_dims(n_audio_ctx=40))
    mel = random_mel(model.dims)
    whole = np.array(model.encoder(mel))
    monkeypatch.setattr(host_math, "ROWS_PER_BLOCK", 7)  # 40 positions: blocks of 7 and a remainder
    np.testing.assert_allclose(np.array(model.encoder(mel)), whole, atol=1e-5, rtol=1e-5)


def test_host_gelu_and_softmax_match_their_definitions():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 257)).astype(np.float32) * 4
    gelu = np.array(host_math.gelu_(mx.array(x) * 1.0))
    from math import erf, sqrt

    exact = np.vectorize(lambda v: 0.5 * v * (1 + erf(v / sqrt(2))))(x.astype(np.float64))
    np.testing.assert_allclose(gelu, exact, atol=5e-6, rtol=0)
    soft = np.array(host_math.softmax_(mx.array(x) * 1.0))
    expected = np.exp(x - x.max(-1, keepdims=True))
    np.testing.assert_allclose(soft, expected / expected.sum(-1, keepdims=True), atol=1e-6)


def test_encoder_rejects_a_mel_of_the_wrong_shape(model):
    with pytest.raises(ShapeConversionFailed):
        model.encoder(mx.zeros((1, 2 * model.dims.n_audio_ctx, 64)))  # 64 mel bins, model has 80
    with pytest.raises(ShapeConversionFailed):
        model.encoder(mx.zeros((1, 4 * model.dims.n_audio_ctx, 80)))  # longer than the positions


def test_decoder_refuses_to_run_past_its_context(model):
    features = model.encoder(random_mel(model.dims))
    with pytest.raises(ShapeConversionFailed):
        model.decoder(mx.zeros((1, model.dims.n_text_ctx + 1), dtype=mx.int32), features)


def test_alignment_heads_default_to_the_last_half_of_the_decoder():
    model = random_model(tiny_dims(n_text_layer=4, n_text_head=2))
    assert np.array(model.alignment_heads).tolist() == [[2, 0], [2, 1], [3, 0], [3, 1]]
    model.set_alignment_heads([[0, 1]])
    assert model.alignment_heads.shape == (1, 2)
    with pytest.raises(ValueError):
        model.set_alignment_heads([[4, 0]])


def test_language_facts_follow_the_vocabulary_size():
    english = random_model(tiny_dims(n_vocab=51864))
    multilingual = random_model(tiny_dims(n_vocab=51865))
    v3 = random_model(tiny_dims(n_vocab=51866))
    assert (english.is_multilingual, english.num_languages) == (False, 99)
    assert (multilingual.is_multilingual, multilingual.num_languages) == (True, 99)
    assert v3.num_languages == 100


def test_sinusoids_are_sines_then_cosines():
    table = np.array(sinusoids(10, 8))
    assert table.shape == (10, 8)
    np.testing.assert_allclose(table[0], [0, 0, 0, 0, 1, 1, 1, 1], atol=1e-7)
    np.testing.assert_allclose(table[3, 0], np.sin(3.0), atol=1e-6)
    np.testing.assert_allclose(table[3, 4], np.cos(3.0), atol=1e-6)


def test_host_decoder_steps_match_plain_mlx_steps(model):
    """Greedy one-token steps on the host return the same logits, cache and cross scores as MLX."""
    features = model.encoder(random_mel(model.dims))

    def run() -> list[mx.array]:
        logits, cache, _ = model.decoder(mx.array([[3, 1]]), features)
        outputs = []
        for token in (4, 1, 5):
            logits, cache, cross_qk = model.decoder(mx.array([[token]]), features, cache)
            outputs += [logits, *cross_qk, *(kv for layer in cache for kv in layer[0])]
        assert kv_cache_length(cache) == 5
        mx.eval(outputs)
        return outputs

    host = run()
    with host_math.disabled():
        plain = run()
    for ours, reference in zip(host, plain, strict=True):
        assert ours.shape == reference.shape
        np.testing.assert_allclose(np.array(ours), np.array(reference), atol=2e-5, rtol=1e-4)
