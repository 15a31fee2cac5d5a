"""The spectral (DFT, overlap-save) host convolution against the direct im2col one and against MLX's conv, on
tiny random configs: same results within float32 rounding, for every phase/tile edge case."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from mlx_audio_coreml.cpu import host_math
from mlx_audio_coreml.kokoro.model import host_conv, host_conv_fft
from mlx_audio_coreml.kokoro.model.conv import Conv1d
from mlx_audio_coreml.kokoro.model.host_conv_fft import HostConv1dSpectral, spectral_or_direct

pytestmark = pytest.mark.skipif(not host_conv.applies(mx.float32), reason="host path needs MLX on the CPU and oneDNN")


def _conv(channels_in: int, channels_out: int, kernel: int, dilation: int, bias: bool = True) -> Conv1d:
    conv = Conv1d(channels_in, channels_out, kernel, dilation=dilation, padding=(kernel - 1) * dilation // 2, bias=bias)
    mx.eval(conv.parameters())
    return conv


def _input(length: int, channels: int, pad: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((length, channels)).astype(np.float32)
    return host_conv.padded(x, pad)


@pytest.mark.parametrize(
    ("kernel", "dilation", "size", "length"),
    [
        (7, 1, 32, 300),  # several tiles in one phase
        (11, 5, 64, 997),  # 5 phases of unequal length
        (11, 3, 16, 40),  # a transform barely longer than the kernel; more phases than tiles
        (7, 5, 8, 3),  # fewer output frames than phases
        (9, 2, 32, 1),
    ],
)
def test_spectral_conv_equals_direct_conv(kernel, dilation, size, length):
    conv = _conv(6, 5, kernel, dilation)
    x = _input(length, 6, conv.padding, seed=kernel + dilation)
    direct = host_conv.HostConv1d(conv)(x)
    spectral = HostConv1dSpectral(conv, size)(x)
    assert spectral.shape == direct.shape == (length, 5)
    np.testing.assert_allclose(spectral, direct, rtol=0, atol=2e-5 * max(1.0, float(np.abs(direct).max())))


def test_spectral_conv_equals_mlx_and_writes_into_out():
    conv = _conv(8, 8, 11, 3, bias=False)
    x = np.random.default_rng(1).standard_normal((1, 500, 8)).astype(np.float32)
    with host_math.disabled():
        reference = np.array(conv(mx.array(x)))[0]
    out = np.full((500, 8), np.nan, np.float32)
    result = HostConv1dSpectral(conv)(host_conv.padded(x[0], conv.padding), out=out)
    assert result is out
    np.testing.assert_allclose(out, reference, rtol=0, atol=2e-5 * max(1.0, float(np.abs(reference).max())))


def test_spectral_conv_is_used_for_long_kernels_only():
    assert type(spectral_or_direct(_conv(4, 4, 11, 1))) is HostConv1dSpectral
    assert type(spectral_or_direct(_conv(4, 4, 7, 3))) is HostConv1dSpectral
    assert type(spectral_or_direct(_conv(4, 4, 3, 5))) is host_conv.HostConv1d
    strided = Conv1d(4, 4, 8, stride=4, padding=2)
    assert type(spectral_or_direct(strided)) is host_conv.HostConv1d
    with pytest.raises(ValueError, match="stride 1"):
        HostConv1dSpectral(strided)
    with pytest.raises(ValueError, match="cannot hold"):
        HostConv1dSpectral(_conv(4, 4, 11, 1), size=8)


@pytest.mark.parametrize("conv_type", [host_conv.HostConv1d, HostConv1dSpectral])
def test_convs_add_into_out_when_accumulating(conv_type, monkeypatch):
    monkeypatch.setattr(host_conv_fft, "SEGMENT_ROWS", 97)  # several segments, cut mid-tile
    conv = _conv(6, 6, 11, 2)
    x = _input(400, 6, conv.padding, seed=3)
    reference = host_conv.HostConv1d(conv)(x)
    residual = np.random.default_rng(4).standard_normal((400, 6)).astype(np.float32)
    out = residual.copy()
    conv_type(conv)(x, out=out, accumulate=True)
    np.testing.assert_allclose(out, residual + reference, rtol=0, atol=2e-5 * max(1.0, float(np.abs(reference).max())))
    with pytest.raises(ValueError, match="accumulate needs out"):
        conv_type(conv)(x, accumulate=True)
