"""fuse_residual.py: a conv whose output only a residual `add` reads runs as one node that adds the
residual inside the host conv; results match numpy and the unfused MLX ops, zero tails included, and
a conv output read elsewhere or a broadcast residual keeps (or falls back to) the separate add."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
from portable_helpers import load, mb, save_program
from test_host_conv import assert_near, conv_reference

from mlx_audio_coreml.coreml.portable.ops import fused
from mlx_audio_coreml.cpu import host_math, onednn

pytestmark = pytest.mark.skipif(
    not (host_math.available(mx.float32) and onednn.available()), reason="needs the CPU and oneDNN"
)

rng = np.random.default_rng(5)


def _weights(c: int, kernel: int) -> tuple[np.ndarray, np.ndarray]:
    w = (rng.standard_normal((c, c, kernel)) / np.sqrt(c * kernel)).astype(np.float32)
    return w, rng.standard_normal(c).astype(np.float32)


def _predict(path, x: np.ndarray) -> tuple[object, np.ndarray, np.ndarray]:
    model = load(path)
    got = next(iter(model.predict({"x": x}).outputs.values()))
    with host_math.disabled():
        plain = next(iter(model.predict({"x": x}).outputs.values()))
    return model, got, plain


@pytest.mark.parametrize("kernel, dilation", [(3, 1), (3, 5), (11, 3)])  # im2col and spectral kernels
def test_conv_plus_residual_is_one_node_and_matches_numpy(tmp_path, kernel, dilation):
    w, b = _weights(12, kernel)
    pad = dilation * (kernel - 1) // 2
    x = rng.standard_normal((1, 12, 90)).astype(np.float32)
    x[:, :, 60:] = 0.0  # a bucket's zero tail: those frames are bias + residual

    def build(x):
        running = mb.tanh(x=x)  # a computed sum, kept channels-last by layout.py, as in a vocoder
        h = mb.conv(
            x=mb.mul(x=running, y=2.0), weight=w, bias=b, pad_type="custom", pad=[pad, pad], dilations=[dilation]
        )
        return mb.add(x=running, y=h)

    model, got, plain = _predict(save_program(tmp_path, build, [x.shape]), x)

    assert model.program.rewrites["conv_residual"] == 1
    assert [n for n in model.program.block.nodes if n.op.name == fused.CONV_ADD.name]
    assert_near(got, plain)
    assert_near(got, conv_reference(2 * np.tanh(x), w, b, 1, dilation, (pad, pad)) + np.tanh(x))


def test_a_conv_output_read_twice_keeps_its_add(tmp_path):
    w, b = _weights(8, 3)
    x = rng.standard_normal((1, 8, 40)).astype(np.float32)

    def build(x):
        running = mb.tanh(x=x)
        h = mb.conv(x=running, weight=w, bias=b, pad_type="same")
        return mb.mul(x=mb.add(x=h, y=running), y=h)

    model, got, plain = _predict(save_program(tmp_path, build, [x.shape]), x)

    assert model.program.rewrites["conv_residual"] == 0
    h = conv_reference(np.tanh(x), w, b, 1, 1, (1, 1))
    assert_near(got, plain)
    assert_near(got, (h + np.tanh(x)) * h)


def test_a_broadcast_residual_is_added_after_the_conv(tmp_path):
    w, b = _weights(8, 3)
    x = rng.standard_normal((1, 8, 40)).astype(np.float32)

    def build(x):
        h = mb.conv(x=x, weight=w, bias=b, pad_type="same")
        return mb.add(x=h, y=mb.reduce_mean(x=x, axes=[2], keep_dims=True))  # (1, 8, 1) over (1, 8, 40)

    model, got, plain = _predict(save_program(tmp_path, build, [x.shape]), x)

    assert model.program.rewrites["conv_residual"] == 1
    assert_near(got, plain)
    assert_near(got, conv_reference(x, w, b, 1, 1, (1, 1)) + x.mean(axis=2, keepdims=True))
