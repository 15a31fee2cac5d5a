"""The generator's blocks against float64 numpy references (tests/kokoro/vocoder_reference.py) on tiny
random configs, loaded from PyTorch-layout weights as the canonical state holds them."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
import vocoder_reference as ref
from mlx.utils import tree_flatten

import mlx_audio_coreml  # noqa: F401  (BLAS first)
from mlx_audio_coreml.kokoro.model.conv import Conv1d, ConvTranspose1d
from mlx_audio_coreml.kokoro.model.generator import AdaINResBlock1, snake
from mlx_audio_coreml.kokoro.model.state import load_canonical_state


def channels_last(x: np.ndarray) -> mx.array:
    return mx.array(x.transpose(0, 2, 1).astype(np.float32))


def channels_first(y: mx.array) -> np.ndarray:
    return np.array(y).transpose(0, 2, 1).astype(np.float64)


def test_snake_matches_numpy():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, 7)) * 3
    alpha = rng.uniform(0.2, 3.0, (1, 1, 7))
    got = np.array(snake(mx.array(x.astype(np.float32)), mx.array(alpha.astype(np.float32))))
    np.testing.assert_allclose(got, ref.snake(x, alpha), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("kernel", "dilation", "padding"), [(3, 1, 1), (7, 3, 9), (11, 5, 25), (5, 2, 0)])
def test_tap_conv_matches_numpy(kernel, dilation, padding):
    rng = np.random.default_rng(kernel)
    x = rng.standard_normal((2, 6, 40))
    weight, bias = rng.standard_normal((5, 6, kernel)) * 0.3, rng.standard_normal(5)
    conv = Conv1d(6, 5, kernel, dilation=dilation, padding=padding)
    load_canonical_state(conv, {"weight": weight, "bias": bias})

    got = channels_first(conv(channels_last(x)))

    expected = ref.conv1d(x, weight, bias, padding=padding, dilation=dilation)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-4)


@pytest.mark.parametrize(("rate", "kernel"), [(10, 20), (6, 12), (2, 5)])
def test_transposed_conv_upsampling_matches_numpy(rate, kernel):
    """The generator's `ups` (stride u, kernel k, padding (k - u) // 2): L frames -> u * L."""
    rng = np.random.default_rng(rate)
    x = rng.standard_normal((2, 8, 9))
    weight, bias = rng.standard_normal((8, 4, kernel)) * 0.3, rng.standard_normal(4)  # PyTorch (in, out, k)
    up = ConvTranspose1d(8, 4, kernel, stride=rate, padding=(kernel - rate) // 2)
    load_canonical_state(up, {"weight": weight, "bias": bias})

    got = channels_first(up(channels_last(x)))

    expected = ref.conv_transpose1d(x, weight, bias, stride=rate, padding=(kernel - rate) // 2)
    assert got.shape == expected.shape
    if kernel - rate == 2 * ((kernel - rate) // 2):
        assert got.shape[2] == rate * 9
    np.testing.assert_allclose(got, expected, atol=1e-4)


def random_torch_state(block: AdaINResBlock1, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random canonical (PyTorch-layout) weights for the block: conv (out, in, k), alphas (1, C, 1)."""
    state = {}
    for name, value in tree_flatten(block.parameters()):
        shape = value.shape
        if name.endswith("weight") and name.startswith("convs"):
            shape = (shape[0], shape[2], shape[1])
        elif name.startswith("alpha"):
            state[name] = rng.uniform(0.3, 2.0, (1, shape[2], 1))
            continue
        state[name] = rng.standard_normal(shape) * 0.3
    return state


def test_adain_resblock1_matches_numpy():
    rng = np.random.default_rng(3)
    block = AdaINResBlock1(channels=6, kernel_size=5, dilation=(1, 3, 5), style_dim=4)
    state = random_torch_state(block, rng)
    load_canonical_state(block, state)
    x, s = rng.standard_normal((2, 6, 50)), rng.standard_normal((2, 4))

    got = channels_first(block(channels_last(x), mx.array(s.astype(np.float32))))

    expected = ref.adain_resblock1(x, s, state, kernel=5, dilations=(1, 3, 5))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
