"""1-D conv and conv_transpose on the CPU host path (cpu/conv1d.py, cpu/conv1d_dft.py through
ops/host_conv.py): dilated, strided, padded and long kernels, and transposed ones with crops, agree
with a numpy reference and with the plain MLX ops; the weights are prepared once per node."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
from portable_helpers import load, mb, save_program

from mlx_audio_coreml.coreml.portable.ops import host_conv
from mlx_audio_coreml.cpu import conv1d, conv1d_dft, host_math, onednn

pytestmark = pytest.mark.skipif(
    not (host_math.available(mx.float32) and onednn.available()), reason="needs the CPU and oneDNN"
)

rng = np.random.default_rng(11)


def conv_reference(x, w, b, stride, dilation, pad):
    """x (N, C_in, L), MIL weight (C_out, C_in, k) -> (N, C_out, L')."""
    xp = np.pad(x.astype(np.float64), [(0, 0), (0, 0), pad])
    k = w.shape[2]
    length = (xp.shape[2] - dilation * (k - 1) - 1) // stride + 1
    taps = [xp[:, :, j * dilation : j * dilation + stride * (length - 1) + 1 : stride] for j in range(k)]
    return np.einsum("oij,nijt->not", w, np.stack(taps, axis=2)) + b[None, :, None]


def transpose_reference(x, w, b, stride, crop):
    """x (N, C_in, L), MIL weight (C_in, C_out, k) -> (N, C_out, (L - 1) stride + k - crops)."""
    n, _, length = x.shape
    k = w.shape[2]
    full = np.zeros((n, w.shape[1], (length - 1) * stride + k))
    for t in range(length):
        full[:, :, t * stride : t * stride + k] += np.einsum("ni,iok->nok", x[:, :, t], w)
    return full[:, :, crop[0] : full.shape[2] - crop[1]] + b[None, :, None]


@pytest.fixture
def kernels(monkeypatch):
    """Every prepared host convolution, by class name."""
    made: list[str] = []
    classes = ((conv1d, "Conv1d"), (conv1d, "ConvTranspose1d"), (conv1d, "DepthwiseTranspose1d"))
    for module, name in (*classes, (conv1d_dft, "SpectralConv1d")):
        original = getattr(module, name)

        class Counted(original):  # type: ignore[misc, valid-type]
            def __init__(self, *args, _name=name, **kwargs):
                super().__init__(*args, **kwargs)
                made.append(_name)

        monkeypatch.setattr(module, name, Counted)
    monkeypatch.setattr(conv1d_dft, "Conv1d", conv1d.Conv1d)
    return made


def host_and_plain(path, feeds):
    model = load(path)
    assert not model.compiled  # host kernels run eagerly
    got = [model.predict(feeds).outputs for _ in range(2)][-1]
    with host_math.disabled():
        want = model.predict(feeds).outputs
    return next(iter(got.values())), next(iter(want.values()))


def assert_near(got, want, rtol=2e-5):
    assert got.shape == want.shape
    assert float(np.abs(got - want).max()) <= rtol * float(np.abs(want).max())


@pytest.mark.parametrize(
    "kernel, stride, dilation, pad, expected",
    [
        (3, 1, 1, (1, 1), "Conv1d"),
        (11, 1, 5, (25, 25), "SpectralConv1d"),
        (7, 1, 3, (9, 9), "SpectralConv1d"),
        (5, 2, 1, (2, 1), "Conv1d"),
    ],
)
def test_one_axis_convolutions_match_numpy_and_mlx(tmp_path, kernels, kernel, stride, dilation, pad, expected):
    w = (rng.standard_normal((24, 16, kernel)) / np.sqrt(16 * kernel)).astype(np.float32)
    b = rng.standard_normal(24).astype(np.float32)
    x = rng.standard_normal((2, 16, 300)).astype(np.float32)

    def build(x):
        return mb.conv(x=x, weight=w, bias=b, strides=[stride], pad_type="custom", pad=list(pad), dilations=[dilation])

    got, want = host_and_plain(save_program(tmp_path, build, [x.shape]), {"x": x})

    assert kernels == [expected]  # prepared once for two predictions
    assert_near(got, want)
    assert_near(got, conv_reference(x, w, b, stride, dilation, pad))


@pytest.mark.parametrize(
    "c_in, c_out, kernel, stride, crop",
    [(32, 16, 20, 10, (5, 5)), (16, 8, 12, 6, (3, 3)), (1, 1, 20, 5, (0, 0)), (8, 4, 3, 2, (0, 1))],
)
def test_one_axis_transposed_convolutions_match_numpy_and_mlx(tmp_path, kernels, c_in, c_out, kernel, stride, crop):
    w = (rng.standard_normal((c_in, c_out, kernel)) / np.sqrt(c_in)).astype(np.float32)
    b = rng.standard_normal(c_out).astype(np.float32)
    x = rng.standard_normal((2, c_in, 40)).astype(np.float32)

    def build(x):
        return mb.conv_transpose(x=x, weight=w, bias=b, strides=[stride], pad_type="custom", pad=list(crop))

    got, want = host_and_plain(save_program(tmp_path, build, [x.shape]), {"x": x})

    assert kernels == ["ConvTranspose1d"]
    assert_near(got, want)
    assert_near(got, transpose_reference(x, w, b, stride, crop))


@pytest.mark.parametrize("kernel, stride, crop", [(3, 2, (1, 0)), (4, 3, (0, 0)), (5, 2, (2, 2))])
def test_depthwise_transposed_convolutions_match_numpy_and_mlx(tmp_path, kernels, kernel, stride, crop):
    channels = 12
    w = rng.standard_normal((channels, 1, kernel)).astype(np.float32)
    b = rng.standard_normal(channels).astype(np.float32)
    x = rng.standard_normal((2, channels, 40)).astype(np.float32)

    def build(x):
        return mb.conv_transpose(
            x=x, weight=w, bias=b, strides=[stride], pad_type="custom", pad=list(crop), groups=channels
        )

    got, want = host_and_plain(save_program(tmp_path, build, [x.shape]), {"x": x})

    assert kernels == ["DepthwiseTranspose1d"]
    assert_near(got, want)
    per_channel = [
        transpose_reference(x[:, c : c + 1], w[c : c + 1], b[c : c + 1], stride, crop) for c in range(channels)
    ]
    assert_near(got, np.concatenate(per_channel, axis=1))


def test_grouped_convolutions_stay_in_mlx(tmp_path, kernels):
    w = rng.standard_normal((8, 2, 3)).astype(np.float32)
    x = rng.standard_normal((1, 8, 50)).astype(np.float32)
    grouped = save_program(tmp_path, lambda x: mb.conv(x=x, weight=w, groups=4, pad_type="same"), [x.shape])

    out = load(grouped).predict({"x": x}).outputs

    assert kernels == []
    assert next(iter(out.values())).shape == (1, 8, 50)
    assert not host_conv.applies(load(grouped).program.block.nodes[0].ctx, mx.zeros((1, 50, 8)), None, 4)


@pytest.mark.parametrize(
    "kernel, stride, dilation, pad", [(3, 1, 1, (1, 1)), (11, 1, 5, (25, 25)), (5, 2, 1, (2, 1)), (4, 3, 2, (0, 5))]
)
def test_zero_tails_give_the_full_convolution(tmp_path, kernel, stride, dilation, pad):
    # the frames past a zero tail are written as the bias, not computed: the result must not change
    w = (rng.standard_normal((24, 16, kernel)) / np.sqrt(16 * kernel)).astype(np.float32)
    b = rng.standard_normal(24).astype(np.float32)
    x = rng.standard_normal((4, 16, 300)).astype(np.float32)
    x[0, :, 170:] = 0.0  # a bucket's padded frames
    x[1, :, :] = 0.0  # all zero: every frame is the bias
    x[2, :, 290:] = -0.0
    x[3, 5, 250:] = 1e-30  # not zero: computed

    def build(x):
        return mb.conv(x=x, weight=w, bias=b, strides=[stride], pad_type="custom", pad=list(pad), dilations=[dilation])

    got, want = host_and_plain(save_program(tmp_path, build, [x.shape]), {"x": x})

    assert_near(got, want)
    assert_near(got, conv_reference(x, w, b, stride, dilation, pad))
    assert np.array_equal(got[1], np.broadcast_to(b[:, None], got[1].shape))


@pytest.mark.parametrize("c_in, c_out, kernel, stride", [(16, 8, 12, 6), (22, 1, 20, 5), (8, 4, 3, 2)])
def test_transposed_convolution_skips_a_zero_tail_exactly(c_in, c_out, kernel, stride):
    # the groups only zero rows reach are the bias, not computed; many rows: narrow outputs take long blocks
    w = (rng.standard_normal((c_in, c_out, kernel)) / np.sqrt(c_in)).astype(np.float32)
    b = rng.standard_normal(c_out).astype(np.float32)
    conv = conv1d.ConvTranspose1d(w, b, stride)
    x = rng.standard_normal((3000, c_in)).astype(np.float32)
    for live in (0, 1, 2500):  # nothing, one row, a bucket's padded tail
        y = x.copy()
        y[live:] = 0.0
        full = conv(y, (1, 2))
        skipped = conv(y, (1, 2), live=conv1d.nonzero_rows(y))
        reach = live * stride + kernel  # output frames past it only the bias reaches
        assert np.array_equal(skipped[reach:], full[reach:])
        assert np.array_equal(skipped[reach:], np.broadcast_to(b, skipped[reach:].shape))
        assert_near(skipped, full, rtol=1e-6)  # a shorter product may round differently (oneDNN's kernel choice)
    assert_near(full, transpose_reference(y.T[None], w, b, stride, (1, 2))[0].T)


def test_nonzero_rows_finds_the_last_row_with_a_value():
    x = np.zeros((200, 3), np.float32)
    assert conv1d.nonzero_rows(x) == 0
    x[130, 2] = 1e-30
    assert conv1d.nonzero_rows(x) == 131
    x[199, 0] = -0.0
    assert conv1d.nonzero_rows(x) == 131
    x[5, 1] = np.nan
    x[130, 2] = 0.0
    assert conv1d.nonzero_rows(x) == 6


@pytest.mark.parametrize("with_bias", [True, False])
def test_channels_first_pointwise_convolution_runs_on_onednn(tmp_path, monkeypatch, with_bias):
    w = rng.standard_normal((40, 24, 1)).astype(np.float32)
    b = rng.standard_normal(40).astype(np.float32) if with_bias else np.zeros(40, np.float32)
    x = rng.standard_normal((2, 24, 150)).astype(np.float32)
    calls: list[int] = []
    original = host_conv.pointwise
    monkeypatch.setattr(host_conv, "pointwise", lambda *a: calls.append(1) or original(*a))

    def build(x):
        return mb.conv(x=x, weight=w, bias=b) if with_bias else mb.conv(x=x, weight=w)

    got, want = host_and_plain(save_program(tmp_path, build, [x.shape]), {"x": x})

    assert len(calls) == 2  # both host predictions; the plain one ran MLX's product
    assert_near(got, want)
    assert_near(got, conv_reference(x, w, b, 1, 1, (0, 0)))


@pytest.mark.parametrize(
    "kernel, stride, dilation, begin, rows, outputs",
    [
        (3, 1, 1, 1, 40, 40),  # "same" padding
        (3, 1, 5, 5, 40, 40),  # dilated, pad larger than one tap step
        (4, 2, 1, 1, 41, 20),  # strided
        (1, 1, 1, 0, 30, 30),  # pointwise
        (3, 1, 1, 1, 40, 25),  # fewer outputs than x reaches (a zero tail cut off)
        (7, 1, 1, 3, 50, 50),  # spectral
        (11, 1, 3, 15, 60, 60),  # spectral, dilated
        (11, 1, 1, 5, 60, 30),  # spectral, cut short
    ],
)
def test_unpadded_rows_give_the_padded_window_result_exactly(
    monkeypatch, kernel, stride, dilation, begin, rows, outputs
):
    monkeypatch.setattr(conv1d_dft, "SEGMENT_ROWS", 16)  # several segments, each cut from x
    weight = rng.standard_normal((6, 5, kernel)).astype(np.float32)
    bias = rng.standard_normal(6).astype(np.float32)
    x = rng.standard_normal((rows, 5)).astype(np.float32)
    prepared = conv1d_dft.spectral_or_direct(weight, bias, stride, dilation)
    assert isinstance(prepared, conv1d_dft.SpectralConv1d) == (kernel >= conv1d_dft.MIN_KERNEL)
    window = conv1d.window(x, begin, prepared.input_length(outputs)).copy()
    expected = prepared(window, out=np.zeros((outputs, 6), np.float32))
    got = prepared.from_rows(x, begin, np.full((outputs, 6), np.nan, np.float32))
    np.testing.assert_array_equal(got, expected)
