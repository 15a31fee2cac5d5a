"""The CPU host path of the vocoder side (host_conv, host_blocks, host_generator) against the plain MLX path
(`host_math.disabled()`), on tiny random configs: same results within float32 rounding."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
from mlx.utils import tree_flatten

from mlx_audio_coreml.cpu import host_math, onednn
from mlx_audio_coreml.kokoro.config import ISTFTNetConfig
from mlx_audio_coreml.kokoro.model import host_conv, host_generator
from mlx_audio_coreml.kokoro.model.adain import AdainResBlk1d
from mlx_audio_coreml.kokoro.model.conv import Conv1d, ConvTranspose1d
from mlx_audio_coreml.kokoro.model.decoder import Decoder
from mlx_audio_coreml.kokoro.model.host_conv_int8 import HostConv1dInt8
from mlx_audio_coreml.vocoders import VocoderFeatures

pytestmark = pytest.mark.skipif(not host_conv.applies(mx.float32), reason="host path needs MLX on the CPU and oneDNN")

TINY = ISTFTNetConfig(
    upsample_rates=(2, 4),
    upsample_kernel_sizes=(4, 8),
    upsample_initial_channel=8,
    resblock_kernel_sizes=(3, 5),
    resblock_dilation_sizes=((1, 3), (1, 2)),
    gen_istft_n_fft=8,
    gen_istft_hop_size=2,
)
DIM_IN, STYLE = 6, 4


def _random(shape: tuple[int, ...], seed: int, scale: float = 1.0, shift: float = 0.0) -> mx.array:
    return mx.array((np.random.default_rng(seed).standard_normal(shape) * scale + shift).astype(np.float32))


def _close(host: mx.array, reference: mx.array) -> None:
    peak = float(mx.abs(reference).max())
    assert host.shape == reference.shape
    np.testing.assert_allclose(np.array(host), np.array(reference), rtol=0, atol=2e-5 * max(peak, 1.0))


@pytest.fixture(scope="module")
def decoder() -> Decoder:
    mx.random.seed(0)
    model = Decoder(DIM_IN, STYLE, TINY, hidden=12, asr_res_dim=3)
    for block in model.generator.resblocks + model.generator.noise_res:  # alphas away from 1: Snake matters
        block.alpha1 = [mx.random.uniform(0.3, 3.0, a.shape) for a in block.alpha1]
        block.alpha2 = [mx.random.uniform(0.3, 3.0, a.shape) for a in block.alpha2]
    pool = model.decode[-1].pool
    pool.weight, pool.bias = mx.random.normal(pool.weight.shape), mx.random.normal(pool.bias.shape)
    mx.eval(model.parameters())
    return model


@pytest.mark.parametrize(
    ("kernel", "stride", "dilation", "padding"), [(3, 1, 1, 1), (5, 1, 3, 6), (8, 4, 1, 2), (1, 1, 1, 0)]
)
def test_host_conv_equals_mlx_conv(kernel, stride, dilation, padding):
    conv = Conv1d(5, 7, kernel, stride=stride, dilation=dilation, padding=padding)
    x = _random((1, 600, 5), 1)  # several row blocks
    with host_math.disabled():
        reference = conv(x)
    host = host_conv.HostConv1d(conv)(host_conv.padded(np.array(x[0]), padding))
    _close(mx.array(host)[None], reference)


@pytest.mark.parametrize(("kernel", "stride", "padding", "length"), [(12, 6, 3, 40), (20, 10, 5, 700), (7, 3, 2, 9)])
def test_host_transposed_conv_equals_mlx(kernel, stride, padding, length):
    conv = ConvTranspose1d(6, 4, kernel, stride=stride, padding=padding)
    x = _random((1, length, 6), 2)
    reference = conv(x)
    _close(mx.array(host_conv.HostConvTranspose1d(conv)(np.array(x[0])))[None], reference)


@pytest.mark.parametrize(("upsample", "dim_out"), [(False, 8), (False, 5), (True, 5), (True, 8)])
def test_host_adain_res_blk1d_equals_mlx(upsample, dim_out):
    mx.random.seed(3)
    block = AdainResBlk1d(8, dim_out, STYLE, upsample=upsample)
    if upsample:
        block.pool.weight, block.pool.bias = mx.random.normal(block.pool.weight.shape), mx.random.normal((8,))
    x, style = _random((1, 13, 8), 4, scale=3.0, shift=1.0), _random((1, STYLE), 5)
    with host_math.disabled():
        reference = block(x, style)
    _close(block(x, style), reference)


def test_host_generator_equals_mlx(decoder):
    generator = decoder.generator
    x, style = _random((1, 20, 8), 6), _random((1, STYLE), 7)
    f0 = mx.array(120 + 60 * np.random.default_rng(8).random((1, 20)), mx.float32)
    harmonics = generator.harmonic_spectrum(f0, None)
    with host_math.disabled():
        reference = generator.synthesize(x, style, harmonics)
    _close(host_generator.run(generator, x, style, harmonics), reference)


def test_whole_decoder_on_the_host_path_equals_mlx(decoder):
    rng = np.random.default_rng(9)
    f0 = 120 + 60 * rng.random((1, 24))
    f0[0, :4] = 0.0
    features = VocoderFeatures(
        asr=_random((1, DIM_IN, 12), 10),
        f0=mx.array(f0, mx.float32),
        energy=_random((1, 24), 11),
        style=_random((1, STYLE), 12),
    )
    with host_math.disabled():
        reference = decoder(features)
    _close(decoder(features), reference)


def test_reloaded_weights_rebuild_the_host_form():
    conv_block = AdainResBlk1d(4, 4, STYLE)
    keys = [k for k, _ in tree_flatten(conv_block.parameters())]
    x, style = _random((1, 9, 4), 13), _random((1, STYLE), 14)
    before = np.array(conv_block(x, style))
    assert [k for k, _ in tree_flatten(conv_block.parameters())] == keys  # the host form is no parameter
    conv_block.conv1.weight = conv_block.conv1.weight * 2.0  # as load_state does: a new array
    with host_math.disabled():
        reference = conv_block(x, style)
    after = conv_block(x, style)
    _close(after, reference)
    assert not np.allclose(after, before)


def test_host_path_is_off_without_onednn_or_off_the_cpu(monkeypatch):
    monkeypatch.setattr(onednn, "available", lambda: False)
    assert not host_conv.applies(mx.float32)
    monkeypatch.undo()
    assert not host_conv.applies(mx.float16)


def test_int8_conv_is_close_to_float32_and_exact_on_its_own_grid():
    conv = Conv1d(16, 12, 5, dilation=2, padding=4)
    x = host_conv.padded(np.random.default_rng(15).standard_normal((300, 16)).astype(np.float32), 4)
    exact, approx = host_conv.HostConv1d(conv)(x), HostConv1dInt8(conv)(x)
    assert np.linalg.norm(approx - exact) / np.linalg.norm(exact) < 0.03
    # inputs already on the int8 grid (and weights quantized alike) lose nothing but the weight rounding
    grid = np.rint(x / np.abs(x).max() * 127) * (np.abs(x).max() / 127)
    int8 = HostConv1dInt8(conv)
    weights = (int8.weight.astype(np.float32) * int8.scales[:, None]).reshape(12, 5, 16)
    reference = host_conv.HostConv1d(conv)
    reference.weight = np.ascontiguousarray(weights.reshape(12, -1))
    np.testing.assert_allclose(int8(grid.astype(np.float32)), reference(grid.astype(np.float32)), rtol=1e-4, atol=1e-4)


def test_generator_int8_is_opt_in_and_close(decoder):
    generator = decoder.generator
    x, style = _random((1, 20, 8), 16), _random((1, STYLE), 17)
    harmonics = generator.harmonic_spectrum(
        mx.array(150 + 30 * np.random.default_rng(18).random((1, 20)), mx.float32), None
    )
    exact = np.array(host_generator.run(generator, x, style, harmonics))
    generator.host_int8 = True
    try:
        approx = np.array(host_generator.run(generator, x, style, harmonics))
    finally:
        generator.host_int8 = False
    assert not np.array_equal(approx, exact)
    assert np.linalg.norm(approx - exact) / np.linalg.norm(exact) < 0.1
    np.testing.assert_array_equal(np.array(host_generator.run(generator, x, style, harmonics)), exact)
