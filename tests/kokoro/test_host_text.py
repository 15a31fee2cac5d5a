"""The CPU host path of the text side (host_lstm, host_albert) against the plain MLX path (`host_math.disabled()`),
on tiny random configs: same results within float32 rounding; and a whole tiny KokoroModel's features."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
from mlx.utils import tree_flatten, tree_unflatten

from mlx_audio_coreml.cpu import host_math
from mlx_audio_coreml.kokoro.config import KokoroConfig, PLBertConfig
from mlx_audio_coreml.kokoro.model import host_conv
from mlx_audio_coreml.kokoro.model.albert import CustomAlbert
from mlx_audio_coreml.kokoro.model.kokoro_model import KokoroModel
from mlx_audio_coreml.kokoro.model.lstm import BiLSTM

pytestmark = pytest.mark.skipif(not host_conv.applies(mx.float32), reason="host path needs MLX on the CPU and oneDNN")

TINY_BERT = PLBertConfig(hidden_size=16, num_attention_heads=4, intermediate_size=24, max_position_embeddings=40,
                         num_hidden_layers=3, embedding_size=8)  # fmt: skip


def _randomize(module, seed: int, scale: float = 0.5) -> None:
    rng = np.random.default_rng(seed)
    flat = [
        (k, mx.array((rng.standard_normal(v.shape) * scale).astype(np.float32)))
        for k, v in tree_flatten(module.parameters())
    ]
    module.update(tree_unflatten(flat))
    mx.eval(module.parameters())


def _close(host: mx.array, reference: mx.array, tolerance: float = 2e-5) -> None:
    assert host.shape == reference.shape
    peak = max(float(mx.abs(reference).max()), 1.0)
    np.testing.assert_allclose(np.array(host), np.array(reference), rtol=0, atol=tolerance * peak)


@pytest.mark.parametrize("steps", [1, 37])
def test_host_bilstm_equals_mlx(steps):
    lstm = BiLSTM(7, 5)
    _randomize(lstm, 0, scale=0.8)
    x = mx.array(np.random.default_rng(1).standard_normal((2, steps, 7)).astype(np.float32))  # two rows
    with host_math.disabled():
        reference = lstm(x)
    _close(lstm(x), reference)


def test_host_albert_equals_mlx():
    bert = CustomAlbert(TINY_BERT, vocab_size=30)
    _randomize(bert, 2)
    ids = mx.array(np.random.default_rng(3).integers(0, 30, (1, 23)).astype(np.int32))
    with host_math.disabled():
        reference = bert(ids)
    _close(bert(ids), reference)


def test_tiny_kokoro_features_on_the_host_path_equal_mlx():
    config = KokoroConfig.from_dict({
        "n_token": 30, "hidden_dim": 16, "istftnet": {}, "style_dim": 8, "n_layer": 2, "max_dur": 6, "text_encoder_kernel_size": 5,
        "plbert": {"hidden_size": 16, "num_attention_heads": 4, "intermediate_size": 24, "max_position_embeddings": 40,
                   "num_hidden_layers": 3},
    })  # fmt: skip
    model = KokoroModel(config, with_decoder=False)
    _randomize(model, 4, scale=0.3)
    ids = mx.array([[0, *np.random.default_rng(5).integers(1, 30, 12).tolist(), 0]], dtype=mx.int32)
    style = mx.array(np.random.default_rng(6).standard_normal((1, 16)).astype(np.float32))
    forced = mx.array(np.random.default_rng(7).integers(1, 4, 14).astype(np.int32))
    with host_math.disabled():
        reference, ref_durations = model.features(ids, style, durations=forced)
        predicted = model.durations(ids, style)
    features, durations = model.features(ids, style, durations=forced)
    assert np.array_equal(np.array(durations), np.array(ref_durations))
    assert np.array_equal(np.array(model.durations(ids, style)), np.array(predicted))
    for name in ("asr", "f0", "energy", "style"):
        _close(getattr(features, name), getattr(reference, name), tolerance=1e-4)
