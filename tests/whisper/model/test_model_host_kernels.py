"""The CPU host path's kernels: oneDNN products, host linear layers (float32 and int8), the
encoder's blocks on worker threads, and int8 models that compute through them."""

from __future__ import annotations

import platform
import sys

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from model_helpers import random_mel, random_model, tiny_dims

from mlx_audio_coreml.cpu import host_math, onednn
from mlx_audio_coreml.cpu import pool as host_pool
from mlx_audio_coreml.cpu.int8_rows import quantize_rows
from mlx_audio_coreml.cpu.linear import HostLinear
from mlx_audio_coreml.errors import CPUKernelFailed
from mlx_audio_coreml.whisper import host_encoder
from mlx_audio_coreml.whisper.loading import load_whisper
from mlx_audio_coreml.whisper.quantize import quantized_layers, use_host_int8

X86_LINUX = sys.platform.startswith("linux") and platform.machine() == "x86_64"
needs_onednn = pytest.mark.skipif(not onednn.available(), reason="onednn-cpu-gomp not installed")


def test_onednn_is_installed_where_the_cpu_extra_provides_it():
    if not X86_LINUX:
        pytest.skip("the onednn-cpu-gomp wheel exists for x86_64 Linux only")
    assert onednn.available() and onednn.version().startswith("3.")


@needs_onednn
def test_sgemm_matches_numpy_for_plain_transposed_and_strided_operands():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((37, 29)).astype(np.float32)
    b = rng.standard_normal((29, 41)).astype(np.float32)
    np.testing.assert_allclose(onednn.sgemm(a, b, np.empty((37, 41), np.float32)), a @ b, rtol=1e-5, atol=1e-5)
    wide = np.zeros((37, 100), np.float32)  # the result lands in columns 10..50 of a wider block
    onednn.sgemm(a, np.ascontiguousarray(b.T), wide[:, 10:51], b_transposed=True)
    np.testing.assert_allclose(wide[:, 10:51], a @ b, rtol=1e-5, atol=1e-5)
    assert not wide[:, :10].any() and not wide[:, 51:].any()
    onednn.sgemm(a, b, wide[:, 10:51], accumulate=True)
    np.testing.assert_allclose(wide[:, 10:51], 2 * (a @ b), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError):
        onednn.sgemm(a, b.T, np.empty((37, 41), np.float32))


@needs_onednn
def test_int8_gemm_gives_exact_integer_sums_within_the_cpus_weight_limit():
    rng = np.random.default_rng(1)
    limit = onednn.int8_weight_limit()
    a = rng.integers(-127, 128, (5, 300), dtype=np.int8)
    b = rng.integers(-limit, limit + 1, (70, 300), dtype=np.int8)
    b[0, :] = limit  # the worst case for saturating pair sums: every product at its largest
    a[0, :] = 127
    out = onednn.gemm_int8(a, b, np.empty((5, 70), np.int32))
    np.testing.assert_array_equal(out, a.astype(np.int64) @ b.astype(np.int64).T)


@needs_onednn
def test_unsigned_by_signed_gemm_gives_exact_sums_plus_the_column_offsets():
    rng = np.random.default_rng(7)
    limit = onednn.int8_weight_limit()
    a = rng.integers(0, 256, (4, 300), dtype=np.uint8)
    b = rng.integers(-limit, limit + 1, (70, 300), dtype=np.int8)
    b[0, :], a[0, :] = limit, 255  # the worst case for saturating pair sums
    offsets = rng.integers(-(10**6), 10**6, 70).astype(np.int32)
    out = onednn.gemm_u8s8(a, b, np.empty((4, 70), np.int32), offsets)
    np.testing.assert_array_equal(out, a.astype(np.int64) @ b.astype(np.int64).T + offsets)
    part = np.zeros((4, 70), np.int32)  # a column block, as the host linear layers split them
    onednn.gemm_u8s8(a, b[10:30], part[:, 10:30], offsets[10:30])
    np.testing.assert_array_equal(part[:, 10:30], out[:, 10:30])
    assert not part[:, :10].any() and not part[:, 30:].any()


@needs_onednn
def test_the_weight_limit_is_full_int8_only_where_full_int8_sums_are_exact():
    a = np.full((1, 64), 127, np.int8)
    b = np.full((1, 64), 127, np.int8)
    exact = int(onednn.gemm_int8(a, b, np.empty((1, 1), np.int32))[0, 0]) == 64 * 127 * 127
    assert onednn.int8_weight_limit() == (127 if exact else 63)
    quantized, _ = quantize_rows(np.array([[0.5, -2.0, 1.0]], np.float32), onednn.int8_weight_limit())
    assert np.abs(quantized).max() == onednn.int8_weight_limit()


@needs_onednn
def test_a_failing_call_raises_a_typed_error_with_its_status():
    library = onednn._library()
    data = np.zeros(4, np.float32).ctypes.data
    status = library.dnnl_sgemm(b"N", b"N", 2, 2, 2, 1.0, data, 1, data, 2, 0.0, data, 2)  # lda < K
    with pytest.raises(CPUKernelFailed) as caught:
        onednn._check("dnnl_sgemm", status)
    assert caught.value.function == "dnnl_sgemm" and caught.value.status == status != 0


def _int8_reference(weight: np.ndarray, bias: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The int8 scheme written out: per-row symmetric weights and inputs, integer sums, both scales."""
    w_scale = np.maximum(np.abs(weight).max(1), 1e-30) / onednn.int8_weight_limit()
    x_scale = np.maximum(np.abs(x).max(1), 1e-30) / 127
    w_q = np.rint(weight / w_scale[:, None]).astype(np.int64)
    x_q = np.rint(x / x_scale[:, None]).astype(np.int64)
    return (x_q @ w_q.T) * x_scale[:, None] * w_scale[None, :] + bias


@needs_onednn
@pytest.mark.parametrize("rows", [1, 300])
def test_host_linear_float32_and_int8(rows):
    rng = np.random.default_rng(rows)
    weight = rng.standard_normal((96, 64)).astype(np.float32) * 0.1
    bias = rng.standard_normal(96).astype(np.float32)
    x = rng.standard_normal((rows, 64)).astype(np.float32)
    exact = x @ weight.T + bias
    np.testing.assert_allclose(HostLinear(weight, bias)(x), exact, rtol=1e-5, atol=1e-5)
    int8 = HostLinear(weight, bias, int8=True)
    got = int8(x)
    np.testing.assert_allclose(got, _int8_reference(weight, bias, x), rtol=1e-5, atol=1e-5)
    assert np.abs(got - exact).max() / np.abs(exact).max() < 0.02
    np.testing.assert_array_equal(int8(np.zeros((rows, 64), np.float32)), np.broadcast_to(bias, (rows, 96)))
    assert int8(x[0]).shape == (96,)


def test_quantize_rows_keeps_each_row_within_half_a_step():
    matrix = np.random.default_rng(2).standard_normal((10, 33)).astype(np.float32)
    quantized, scales = quantize_rows(matrix)
    assert quantized.dtype == np.int8 and np.abs(quantized).max() == 127
    assert np.all(np.abs(quantized * scales[:, None] - matrix) <= scales[:, None] / 2 + 1e-7)


@needs_onednn
def test_encoder_blocks_run_through_the_host_kernels_and_match_mlx(monkeypatch):
    model = random_model(tiny_dims(n_audio_ctx=40))
    mel = random_mel(model.dims)
    calls = []
    original = host_encoder.encode_blocks
    monkeypatch.setattr(host_encoder, "encode_blocks", lambda *a, **k: calls.append(1) or original(*a, **k))
    ours = np.array(model.encoder(mel))
    assert calls, "the encoder did not take the host-kernel path"
    with host_math.disabled():
        plain = np.array(model.encoder(mel))
    np.testing.assert_allclose(ours, plain, atol=2e-5, rtol=1e-4)
    monkeypatch.setattr(host_pool, "worker_count", lambda: 1)  # the same work on the calling thread
    np.testing.assert_allclose(np.array(model.encoder(mel)), ours, atol=1e-6, rtol=1e-6)


@needs_onednn
def test_int8_host_model_stays_close_to_float_and_falls_back_without_onednn(monkeypatch):
    dims = tiny_dims(n_audio_state=64, n_text_state=64)
    reference, int8 = random_model(dims, seed=2), random_model(dims, seed=2)
    use_host_int8(int8)
    assert quantized_layers(int8) > 0 and quantized_layers(reference) == 0
    mel, tokens = random_mel(dims), mx.array([[1, 2, 3]])
    features, expected = reference.encoder(mel), None
    got_features = int8.encoder(mel)
    assert np.abs(np.array(got_features - features)).mean() / np.abs(np.array(features)).mean() < 0.05
    logits, cache, _ = reference.decoder(tokens, features)
    expected = np.array(reference.decoder(mx.array([[4]]), features, cache)[0])
    got = np.array(int8.decoder(mx.array([[4]]), features, cache)[0])  # one row: the host int8 step
    assert np.abs(got - expected).max() / np.abs(expected).max() < 0.05


@needs_onednn
def test_int8_loading_uses_host_int8_on_the_cpu_and_mlx_quantization_without_onednn(tmp_path, monkeypatch):
    from model_helpers import write_ct2_folder, write_tokenizer_json

    folder = write_ct2_folder(random_model(tiny_dims(n_audio_state=64, n_text_state=64)), tmp_path / "m")
    write_tokenizer_json(folder / "tokenizer.json")
    bundle = load_whisper(folder, quantization="int8")
    assert bundle.model.host_int8 and type(bundle.model.encoder.blocks[0].mlp1) is nn.Linear
    assert bundle.quantization is not None and bundle.quantization.bits == 8
    monkeypatch.setattr(onednn, "available", lambda: False)
    bundle = load_whisper(folder, quantization="int8")
    assert not getattr(bundle.model, "host_int8", False)
    assert isinstance(bundle.model.encoder.blocks[0].mlp1, nn.QuantizedLinear)


def test_prompt_prefill_on_the_host_returns_the_mlx_logits_cache_and_scores():
    model = random_model(tiny_dims(n_audio_ctx=40))
    features = model.encoder(random_mel(model.dims))
    tokens = mx.array([[3, 1, 4, 1, 5, 9]])
    host = model.decoder(tokens, features)
    with host_math.disabled():
        plain = model.decoder(tokens, features)
    np.testing.assert_allclose(np.array(host[0]), np.array(plain[0]), atol=2e-5, rtol=1e-4)
    for ours, reference in zip(host[2], plain[2], strict=True):  # cross-attention scores (1, H, T, n_ctx)
        np.testing.assert_allclose(np.array(ours), np.array(reference), atol=2e-5, rtol=1e-4)
    for (ours_self, ours_cross), (ref_self, ref_cross) in zip(host[1], plain[1], strict=True):
        for ours, reference in (*zip(ours_self, ref_self), *zip(ours_cross, ref_cross)):
            assert ours.shape == reference.shape
            np.testing.assert_allclose(np.array(ours), np.array(reference), atol=2e-5, rtol=1e-4)


@needs_onednn
def test_a_large_int8_row_product_split_between_workers_equals_the_whole():
    rng = np.random.default_rng(7)
    weight = rng.standard_normal((8200, 512)).astype(np.float32)  # above the split threshold
    x = rng.standard_normal((1, 512)).astype(np.float32)
    layer = HostLinear(weight, None, int8=True)
    np.testing.assert_allclose(layer(x), _int8_reference(weight, np.zeros(8200, np.float32), x), rtol=1e-5, atol=1e-4)


def test_pool_work_inside_work_runs_inline_and_ranges_cover_everything():
    inner = host_pool.run_all(lambda i: host_pool.run_all(lambda j: (i, j), range(3)), range(4))
    assert inner == [[(i, j) for j in range(3)] for i in range(4)]
    ranges = host_pool.even_ranges(10, 3)
    assert [list(range(10))[r] for r in ranges] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert host_pool.even_ranges(1, 4) == [slice(0, 1)]


@needs_onednn
@pytest.mark.parametrize("int8", [False, True])
def test_many_rows_split_between_workers_equal_one_product(int8, monkeypatch):
    rng = np.random.default_rng(8)
    weight, bias = rng.standard_normal((80, 48)).astype(np.float32), rng.standard_normal(80).astype(np.float32)
    x = rng.standard_normal((700, 48)).astype(np.float32)
    layer = HostLinear(weight, bias, int8=int8)
    split = layer(x)
    monkeypatch.setattr(host_pool, "worker_count", lambda: 1)
    whole = layer(x)
    if int8:  # integer sums: the split cannot change a bit
        np.testing.assert_array_equal(split, whole)
    else:  # oneDNN's float kernels block by row count, so sums round in another order (2e-6 seen on AVX2)
        np.testing.assert_allclose(split, whole, rtol=1e-5, atol=1e-5)


def test_a_host_step_of_several_rows_matches_mlx_and_beams_keep_the_audio_cache():
    from mlx_audio_coreml.whisper.model import reorder_kv_cache

    model = random_model(tiny_dims(n_audio_ctx=40))
    features = mx.repeat(model.encoder(random_mel(model.dims)), 3, axis=0)  # three beams of one window
    _, cache, _ = model.decoder(mx.array([[3, 1, 4]] * 3), features)
    step = mx.array([[5], [9], [2]])
    host = model.decoder(step, features, cache)
    with host_math.disabled():
        plain = model.decoder(step, features, cache)
    np.testing.assert_allclose(np.array(host[0]), np.array(plain[0]), atol=2e-5, rtol=1e-4)
    for ours, reference in zip(host[2], plain[2], strict=True):
        np.testing.assert_allclose(np.array(ours), np.array(reference), atol=2e-5, rtol=1e-4)
    rows = mx.array([2, 2, 0])
    reordered = reorder_kv_cache(host[1], rows, same_audio_rows=True)
    for (self_kv, audio_kv), (old_self, old_audio) in zip(reordered, host[1], strict=True):
        assert audio_kv is old_audio  # identical audio rows are not copied
        np.testing.assert_array_equal(np.array(self_kv[0]), np.array(old_self[0])[[2, 2, 0]])


@needs_onednn
def test_an_int8_session_on_the_cpu_says_how_its_int8_runs(tmp_path):
    import dataclasses

    from model_helpers import write_ct2_folder, write_tokenizer_json

    from mlx_audio_coreml.options import ModelLoadingOptions, WhisperQuantization
    from mlx_audio_coreml.whisper.session import WhisperSession

    folder = write_ct2_folder(random_model(tiny_dims(n_audio_state=64, n_text_state=64)), tmp_path / "m")
    write_tokenizer_json(folder / "tokenizer.json")
    options = dataclasses.replace(ModelLoadingOptions.mlx_only(), quantization=WhisperQuantization.INT8)
    with WhisperSession.from_pretrained(str(folder), options) as session:
        assert session.info.quantization is WhisperQuantization.INT8
        assert any("oneDNN int8" in note and "not memory" in note for note in session.info.notes)
