"""Kokoro's spectral host convolution (kokoro/model/host_conv_fft.py, an adapter over cpu/conv1d_dft.py,
whose kernel tests/cpu/test_conv1d_dft.py covers): built from an MLX Conv1d it equals MLX's conv and
HostConv1d, writes into or adds to `out`, keeps no second weight copy, and is used for long kernels only."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from mlx_audio_coreml.cpu import host_math
from mlx_audio_coreml.kokoro.model import host_conv
from mlx_audio_coreml.kokoro.model.conv import Conv1d
from mlx_audio_coreml.kokoro.model.host_conv_fft import HostConv1dSpectral, spectral_or_direct

pytestmark = pytest.mark.skipif(not host_conv.applies(mx.float32), reason="host path needs MLX on the CPU and oneDNN")


def _conv(channels_in: int, channels_out: int, kernel: int, dilation: int, bias: bool = True) -> Conv1d:
    conv = Conv1d(channels_in, channels_out, kernel, dilation=dilation, padding=(kernel - 1) * dilation // 2, bias=bias)
    mx.eval(conv.parameters())
    return conv


def _assert_close(got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-5 * max(1.0, float(np.abs(want).max())))


@pytest.mark.parametrize("bias", [True, False])
def test_spectral_conv_equals_mlx_and_writes_into_out(bias):
    conv = _conv(8, 8, 11, 3, bias=bias)
    x = np.random.default_rng(1).standard_normal((1, 500, 8)).astype(np.float32)
    with host_math.disabled():
        reference = np.array(conv(mx.array(x)))[0]
    out = np.full((500, 8), np.nan, np.float32)

    result = HostConv1dSpectral(conv)(host_conv.padded(x[0], conv.padding), out=out)

    assert result is out
    _assert_close(out, reference)


def test_spectral_conv_adds_into_out_as_host_conv_does():
    conv = _conv(6, 6, 7, 2)
    x = host_conv.padded(np.random.default_rng(3).standard_normal((400, 6)).astype(np.float32), conv.padding)
    residual = np.random.default_rng(4).standard_normal((400, 6)).astype(np.float32)
    direct, spectral = residual.copy(), residual.copy()

    host_conv.HostConv1d(conv)(x, out=direct, accumulate=True)
    HostConv1dSpectral(conv, size=16)(x, out=spectral, accumulate=True)

    _assert_close(spectral, direct)


def test_spectral_conv_shares_the_prepared_weight():
    prepared = HostConv1dSpectral(_conv(4, 6, 11, 1))

    assert np.shares_memory(prepared.spectral.weight, prepared.weight)
    assert prepared.spectral.bias is not None and prepared.bias is not None
    assert np.shares_memory(prepared.spectral.bias, prepared.bias)


def test_spectral_conv_is_used_for_long_kernels_only():
    assert type(spectral_or_direct(_conv(4, 4, 11, 1))) is HostConv1dSpectral
    assert type(spectral_or_direct(_conv(4, 4, 7, 3))) is HostConv1dSpectral
    assert type(spectral_or_direct(_conv(4, 4, 3, 5))) is host_conv.HostConv1d
    strided = Conv1d(4, 4, 8, stride=4, padding=2)
    assert type(spectral_or_direct(strided)) is host_conv.HostConv1d
    with pytest.raises(ValueError, match="stride 1"):
        HostConv1dSpectral(strided)
