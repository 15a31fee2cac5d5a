"""cpu/conv1d_dft.py's spectral (DFT, overlap-save) convolution against cpu/conv1d.py's im2col one and a
float64 numpy reference, on tiny random configs: same results within float32 rounding for every phase,
tile and segment edge case, written into `out` or added to it."""

from __future__ import annotations

import numpy as np
import pytest

from mlx_audio_coreml.cpu import conv1d, conv1d_dft, onednn
from mlx_audio_coreml.cpu.conv1d import Conv1d
from mlx_audio_coreml.cpu.conv1d_dft import SpectralConv1d, spectral_or_direct

pytestmark = pytest.mark.skipif(not onednn.available(), reason="host convolutions need oneDNN")


def _weights(c_in: int, c_out: int, kernel: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A MIL conv weight (out, in, k) and bias."""
    rng = np.random.default_rng(seed)
    weight = (rng.standard_normal((c_out, c_in, kernel)) / np.sqrt(c_in * kernel)).astype(np.float32)
    return weight, rng.standard_normal(c_out).astype(np.float32)


def _padded_input(length: int, channels: int, kernel: int, dilation: int, seed: int) -> np.ndarray:
    """(length, channels) rows with 'same' zero padding: the output has `length` frames."""
    x = np.random.default_rng(seed).standard_normal((length, channels)).astype(np.float32)
    pad = (kernel - 1) * dilation
    return conv1d.zero_padded(x, pad // 2, pad - pad // 2)


def _reference(x_padded: np.ndarray, weight: np.ndarray, bias: np.ndarray, dilation: int) -> np.ndarray:
    """The correlation in float64: (L + span, in) rows -> (L, out)."""
    kernel = weight.shape[2]
    length = x_padded.shape[0] - (kernel - 1) * dilation
    taps = np.stack([x_padded[j * dilation : j * dilation + length] for j in range(kernel)], axis=1)
    return np.einsum("tji,oij->to", taps.astype(np.float64), weight) + bias


def _assert_close(got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-5 * max(1.0, float(np.abs(want).max())))


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
def test_spectral_conv_equals_im2col_and_reference(kernel, dilation, size, length):
    weight, bias = _weights(6, 5, kernel, seed=kernel + dilation)
    x = _padded_input(length, 6, kernel, dilation, seed=kernel)

    spectral = SpectralConv1d(weight, bias, 1, dilation, size)(x)

    assert spectral.shape == (length, 5)
    _assert_close(spectral, Conv1d(weight, bias, 1, dilation)(x))
    _assert_close(spectral, _reference(x, weight, bias, dilation))


@pytest.mark.parametrize("conv_type", [Conv1d, SpectralConv1d])
def test_convs_write_into_out_or_add_to_it_across_segments(conv_type, monkeypatch):
    monkeypatch.setattr(conv1d_dft, "SEGMENT_ROWS", 97)  # several segments, cut mid-tile
    weight, bias = _weights(6, 6, 11, seed=3)
    x = _padded_input(400, 6, 11, 2, seed=3)
    reference = _reference(x, weight, bias, 2)
    conv = conv_type(weight, bias, 1, 2)

    out = np.full((400, 6), np.nan, np.float32)
    assert conv(x, out=out) is out
    _assert_close(out, reference)

    residual = np.random.default_rng(4).standard_normal((400, 6)).astype(np.float32)
    summed = residual.copy()
    conv(x, out=summed, accumulate=True)
    _assert_close(summed, residual + reference)
    with pytest.raises(ValueError, match="accumulate needs out"):
        conv(x, accumulate=True)


def test_spectral_conv_without_bias_equals_reference():
    weight, _ = _weights(8, 8, 11, seed=1)
    x = _padded_input(500, 8, 11, 3, seed=1)

    _assert_close(SpectralConv1d(weight, None, 1, 3)(x), _reference(x, weight, np.zeros(8), 3))


def test_spectral_conv_is_chosen_for_long_stride_one_kernels_only():
    long_weight, bias = _weights(4, 4, 11, seed=0)
    assert type(spectral_or_direct(long_weight, bias, 1, 1)) is SpectralConv1d
    assert type(spectral_or_direct(_weights(4, 4, 7, seed=0)[0], bias, 1, 3)) is SpectralConv1d
    assert type(spectral_or_direct(_weights(4, 4, 3, seed=0)[0], bias, 1, 5)) is Conv1d
    assert type(spectral_or_direct(_weights(4, 4, 8, seed=0)[0], bias, 4, 1)) is Conv1d
    with pytest.raises(ValueError, match="stride 1"):
        SpectralConv1d(long_weight, bias, stride=4)
    with pytest.raises(ValueError, match="cannot hold"):
        SpectralConv1d(long_weight, bias, size=8)
