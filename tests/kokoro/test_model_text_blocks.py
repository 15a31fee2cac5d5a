"""Each text-side block of the MLX Kokoro model against the plain numpy reference, on tiny random weights."""

from __future__ import annotations

import mlx.core as mx
import model_text_reference as ref
import numpy as np
import pytest

from mlx_audio_coreml.kokoro.config import PLBertConfig
from mlx_audio_coreml.kokoro.model.adain import AdaIN1d, AdainResBlk1d, DepthwiseConvTranspose1d
from mlx_audio_coreml.kokoro.model.albert import AlbertLayer, CustomAlbert
from mlx_audio_coreml.kokoro.model.lstm import BiLSTM
from mlx_audio_coreml.kokoro.model.prosody import AdaLayerNorm, DurationEncoder
from mlx_audio_coreml.kokoro.model.state import load_canonical_state
from mlx_audio_coreml.kokoro.model.text_encoder import TextEncoder

TINY_BERT = PLBertConfig(
    hidden_size=16,
    num_attention_heads=2,
    intermediate_size=24,
    max_position_embeddings=32,
    num_hidden_layers=3,
    embedding_size=8,
)


def _loaded(module, seed: int = 0):
    state = ref.random_canonical_state(module, seed)
    load_canonical_state(module, state)
    return module, state


def _rand(*shape: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _close(got: mx.array, want: np.ndarray, atol: float = 2e-5) -> None:
    np.testing.assert_allclose(np.array(got), want, rtol=1e-4, atol=atol)


def test_bilstm_matches_numpy_lstm_equations_both_directions() -> None:
    lstm, state = _loaded(BiLSTM(6, 5))
    x = _rand(9, 6)
    got = lstm(mx.array(x)[None])[0]
    assert got.shape == (9, 10)
    _close(got, ref.bilstm(x, state))


def test_bilstm_reverse_direction_reads_the_sequence_backwards() -> None:
    # The backward half at the last frame has seen only that frame: equal to a one-step LSTM on it.
    lstm, state = _loaded(BiLSTM(4, 3), seed=2)
    x = _rand(7, 4)
    got = np.array(lstm(mx.array(x)[None])[0])
    one_step = ref.lstm_direction(
        x[-1:], *(state[f"{n}_reverse"] for n in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"))
    )
    np.testing.assert_allclose(got[-1, 3:], one_step[0], rtol=1e-5, atol=1e-6)


def test_bilstm_matches_torch_lstm() -> None:
    torch = pytest.importorskip("torch")
    lstm, state = _loaded(BiLSTM(6, 5), seed=3)
    t_lstm = torch.nn.LSTM(6, 5, 1, batch_first=True, bidirectional=True)
    t_lstm.load_state_dict({k: torch.tensor(v) for k, v in state.items()})
    x = _rand(1, 11, 6)
    with torch.no_grad():
        want = t_lstm(torch.tensor(x))[0].numpy()
    _close(lstm(mx.array(x)), want)


def test_ada_layer_norm_scales_and_shifts_normalized_channels_by_style() -> None:
    norm, state = _loaded(AdaLayerNorm(4, 6))
    x, s = _rand(5, 6), _rand(4, seed=2)
    _close(norm(mx.array(x)[None], mx.array(s)[None])[0], ref.ada_layer_norm(x, s, state))


def test_adain1d_normalizes_each_channel_over_time() -> None:
    norm, state = _loaded(AdaIN1d(4, 6))
    x, s = _rand(6, 10), _rand(4, seed=2)
    got = norm(mx.array(x.T)[None], mx.array(s)[None])[0]  # channels last
    _close(got.T, ref.adain1d(x, s, state))


def test_pool_matches_transposed_convolution_definition_and_doubles_time() -> None:
    pool, state = _loaded(DepthwiseConvTranspose1d(5))
    x = _rand(5, 7)
    got = pool(mx.array(x.T)[None])[0].T
    assert got.shape == (5, 14)
    _close(got, ref.depthwise_conv_transpose1d(x, state["weight"], state["bias"]))


def test_pool_matches_torch_conv_transpose() -> None:
    torch = pytest.importorskip("torch")
    pool, state = _loaded(DepthwiseConvTranspose1d(5), seed=4)
    x = _rand(1, 5, 7)
    want = torch.nn.functional.conv_transpose1d(
        torch.tensor(x),
        torch.tensor(state["weight"]),
        torch.tensor(state["bias"]),
        stride=2,
        padding=1,
        output_padding=1,
        groups=5,
    ).numpy()
    _close(pool(mx.array(x.transpose(0, 2, 1))).transpose(0, 2, 1), want)


@pytest.mark.parametrize(
    ("dim_in", "dim_out", "upsample"),
    [(6, 6, False), (6, 4, False), (6, 4, True), (4, 4, True)],
    ids=["identity-shortcut", "learned-shortcut", "learned-shortcut-upsample", "upsample"],
)
def test_adain_res_blk1d_matches_reference(dim_in: int, dim_out: int, upsample: bool) -> None:
    block, state = _loaded(AdainResBlk1d(dim_in, dim_out, style_dim=3, upsample=upsample))
    assert ("conv1x1.weight" in state) == (dim_in != dim_out)
    assert ("pool.weight" in state) == upsample
    x, s = _rand(dim_in, 8), _rand(3, seed=2)
    got = block(mx.array(x.T)[None], mx.array(s)[None])[0].T
    assert got.shape == (dim_out, 16 if upsample else 8)
    _close(got, ref.adain_res_blk1d(x, s, state, upsample))


def test_albert_layer_matches_reference() -> None:
    layer, state = _loaded(AlbertLayer(TINY_BERT), seed=5)
    x = _rand(7, 16)
    _close(layer(mx.array(x)[None])[0], ref.albert_layer(x, state, heads=2, eps=1e-12), atol=5e-5)


def test_custom_albert_shares_one_layer_and_maps_embeddings_up() -> None:
    bert, state = _loaded(CustomAlbert(TINY_BERT, vocab_size=11), seed=6)
    assert not any(".albert_layers.1." in k or "albert_layer_groups.1" in k for k in state)
    ids = np.array([0, 3, 7, 10, 2, 0])
    got = bert(mx.array(ids)[None])[0]
    assert got.shape == (6, 16)
    _close(got, ref.albert(ids, state, heads=2, layers=3, eps=1e-12), atol=5e-5)


def test_text_encoder_matches_reference() -> None:
    enc, state = _loaded(TextEncoder(channels=8, kernel_size=5, depth=2, n_symbols=11), seed=7)
    ids = np.array([0, 1, 5, 9, 4, 0])
    got = enc(mx.array(ids)[None])[0].T  # (C, T)
    _close(got, ref.text_encoder(ids, state, depth=2, kernel_size=5))


def test_duration_encoder_appends_style_after_every_norm() -> None:
    enc, state = _loaded(DurationEncoder(sty_dim=3, d_model=6, nlayers=2), seed=8)
    x, s = _rand(5, 6), _rand(3, seed=2)
    got = enc(mx.array(x)[None], mx.array(s)[None])[0]
    assert got.shape == (5, 9)
    np.testing.assert_array_equal(np.array(got)[:, 6:], np.broadcast_to(s, (5, 3)))
    _close(got, ref.duration_encoder(x, s, state, nlayers=2))
