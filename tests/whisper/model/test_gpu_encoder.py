"""The GPU layout of the encoder (whisper/gpu_encoder.py) computes what `WhisperEncoder` computes.

Run on the CPU with tiny random models: every layout (fused or separate q/k/v, fast or explicit
attention, convolutions or im2col products, compiled per layer, whole or not) gives the module's
features within rounding, in float32 and float16, at batch 1 and 3; the cached encoder follows new
weights; a wrong mel shape is refused.
"""

from __future__ import annotations

import itertools

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from model_helpers import random_mel, random_model, tiny_dims

from mlx_audio_coreml.errors import ShapeConversionFailed
from mlx_audio_coreml.whisper import gpu_encoder
from mlx_audio_coreml.whisper.gpu_encoder import GpuEncoder, GpuEncoderOptions
from mlx_audio_coreml.whisper.gpu_encoder_kernels import add_layer_norm, gelu

LAYOUTS = (
    [
        GpuEncoderOptions(fuse, attention, front, compiled)
        for fuse, attention, front, compiled in itertools.product(
            (True, False), ("sdpa", "explicit"), ("conv", "im2col"), ("none", "layer", "whole")
        )
    ]
    + [
        GpuEncoderOptions(fuse, pretranspose=pre, residual=residual, compile=compiled)
        for fuse, pre, residual, compiled in itertools.product(
            (True, False), (True, False), ("add", "gemm"), ("none", "whole")
        )
        if pre or residual == "gemm"
    ]
    + [
        GpuEncoderOptions(fuse, add_ln=True, compile=compiled)
        for fuse in (True, False)
        for compiled in ("none", "layer", "whole")
    ]
)
LAYOUTS += [
    GpuEncoderOptions(compile=compiled, commit_every=every, add_ln=add_ln)
    for compiled, every, add_ln in itertools.product(("none", "layer", "whole"), (1, 2, 3), (False, True))
] + [GpuEncoderOptions(gelu_kernel=True, add_ln=add_ln, commit_every=2) for add_ln in (False, True)]


def _max_diff(a: mx.array, b: mx.array) -> float:
    return float(mx.max(mx.abs(a.astype(mx.float32) - b.astype(mx.float32))))


@pytest.mark.parametrize("options", LAYOUTS, ids=lambda o: "-".join(str(v) for v in vars(o).values()))
def test_every_layout_gives_the_modules_features_in_float32(options: GpuEncoderOptions) -> None:
    dims = tiny_dims()
    model = random_model(dims, seed=2)
    mel = random_mel(dims, batch=3, seed=4)
    want = model.encoder(mel)
    got = GpuEncoder(model.encoder, options)(mel)
    assert got.shape == (3, dims.n_audio_ctx, dims.n_audio_state)
    assert _max_diff(got, want) < 2e-4 * max(1.0, float(mx.max(mx.abs(want))))


FP16_LAYOUTS = [
    GpuEncoderOptions(),
    GpuEncoderOptions(front="im2col", pretranspose=True, residual="gemm"),
    GpuEncoderOptions(fuse_qkv=False, compile="layer", commit_every=1),
    GpuEncoderOptions(compile="whole", commit_every=2, add_ln=True),
    GpuEncoderOptions(compile="whole", commit_every=2, add_ln=True, gelu_kernel=True),
]


@pytest.mark.parametrize(
    "options", FP16_LAYOUTS, ids=["default", "im2col-both", "apart-commit", "chunks-add-ln", "kernels"]
)
def test_float16_layouts_stay_within_half_precision_rounding_of_the_module(options: GpuEncoderOptions) -> None:
    dims = tiny_dims()
    model = random_model(dims, seed=5, dtype=mx.float16)
    mel = random_mel(dims, batch=1, seed=6)
    want = model.encoder(mel)
    got = GpuEncoder(model.encoder, options)(mel)
    assert got.dtype == mx.float16
    assert _max_diff(got, want) < 2e-2  # layer-normed outputs ~1: a few fp16 ulps after two layers


def test_fused_qkv_holds_a_zero_key_bias_between_query_and_value() -> None:
    model = random_model(tiny_dims(), seed=1)
    block = model.encoder.blocks[0]
    weight, bias = gpu_encoder.layer_weights(block, fuse_qkv=True).qkv
    width = block.attn.query.weight.shape[0]
    assert weight.shape == (3 * width, width)
    np.testing.assert_array_equal(np.array(weight[width : 2 * width]), np.array(block.attn.key.weight))
    np.testing.assert_array_equal(np.array(bias[width : 2 * width]), np.zeros(width, np.float32))
    np.testing.assert_array_equal(np.array(bias[2 * width :]), np.array(block.attn.value.bias))


def test_add_layer_norm_returns_the_rounded_sum_and_its_norm() -> None:
    rng = np.random.default_rng(11)
    x, y = (mx.array(rng.standard_normal((2, 5, 8)).astype(np.float16)) for _ in range(2))
    b, g, beta = (mx.array(rng.standard_normal(8).astype(np.float16)) for _ in range(3))
    total, normed = add_layer_norm(x, y, b, g, beta)
    want = (x.astype(mx.float32) + y + b).astype(mx.float16)
    assert total.dtype == mx.float16 and _max_diff(total, want) == 0.0
    assert _max_diff(normed, mx.fast.layer_norm(want, g, beta, 1e-5)) < 1e-2


def test_gelu_is_the_exact_erf_form_rounded_once() -> None:
    x = mx.array(np.linspace(-6, 6, 97, dtype=np.float32).astype(np.float16))
    want = 0.5 * x.astype(mx.float32) * (1 + mx.erf(x.astype(mx.float32) / np.sqrt(2.0)))
    got = gelu(x)
    assert got.dtype == mx.float16
    assert _max_diff(got, want.astype(mx.float16)) == 0.0


def test_cached_encoder_follows_new_weights() -> None:
    dims = tiny_dims()
    model, other = random_model(dims, seed=7), random_model(dims, seed=8)
    mel = random_mel(dims, seed=9)
    first = gpu_encoder.for_encoder(model.encoder)(mel)
    assert _max_diff(first, model.encoder(mel)) < 1e-4
    model.encoder.update(other.encoder.parameters())  # a reload swaps every array
    second = gpu_encoder.for_encoder(model.encoder)(mel)
    assert _max_diff(second, other.encoder(mel)) < 1e-4
    assert _max_diff(second, first) > 1e-2


def test_cpu_device_keeps_the_modules_own_path() -> None:
    model = random_model(tiny_dims(), seed=3)
    with mx.stream(mx.cpu):
        assert gpu_encoder.prepared(model.encoder) is None


def test_quantized_encoder_gets_no_gpu_layout() -> None:
    model = random_model(tiny_dims(n_audio_state=64), seed=3)
    assert gpu_encoder.for_encoder(model.encoder) is not None
    nn.quantize(model.encoder, group_size=32, bits=8)
    assert gpu_encoder.for_encoder(model.encoder) is None


def test_a_callers_compile_around_a_committing_encoder_still_traces() -> None:
    dims = tiny_dims()
    model = random_model(dims, seed=12)
    mel = random_mel(dims, seed=13)
    encoder = GpuEncoder(model.encoder, GpuEncoderOptions(compile="layer", commit_every=1))
    got = mx.compile(encoder)(mel)  # async_eval is refused inside the trace; the encoder carries on
    assert _max_diff(got, model.encoder(mel)) < 1e-4


def test_module_call_takes_the_gpu_layout_when_on_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    dims = tiny_dims()
    model = random_model(dims, seed=14)
    mel = random_mel(dims, batch=2, seed=15)
    want = model.encoder(mel)  # the CPU: the module's own path
    assert gpu_encoder.for_encoder(model.encoder) is not None  # builds the cache the hook would use
    calls: list[int] = []
    real = GpuEncoder.__call__
    monkeypatch.setattr(gpu_encoder, "_device_is_cuda", lambda: True)
    monkeypatch.setattr(GpuEncoder, "__call__", lambda self, m: calls.append(1) or real(self, m))
    got = model.encoder(mel)
    assert calls == [1] and _max_diff(got, want) < 1e-4
    with gpu_encoder.disabled():
        model.encoder(mel)
    assert calls == [1]  # disabled(): the module's path again


def test_wrong_mel_shape_is_refused() -> None:
    dims = tiny_dims()
    encoder = GpuEncoder(random_model(dims).encoder)
    with pytest.raises(ShapeConversionFailed):
        encoder(mx.zeros((1, 2 * dims.n_audio_ctx, dims.n_mels + 1)))
    with pytest.raises(ShapeConversionFailed):
        encoder(mx.zeros((1, 4 * dims.n_audio_ctx, dims.n_mels)))
