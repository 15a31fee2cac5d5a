"""KokoroModel.features end to end on a tiny random config, against hexgrad's forward written in numpy."""

from __future__ import annotations

import mlx.core as mx
import model_text_reference as ref
import numpy as np
import pytest

from mlx_audio_coreml.errors import KokoroInputError
from mlx_audio_coreml.kokoro.config import KokoroConfig, PLBertConfig
from mlx_audio_coreml.kokoro.model import KokoroModel
from mlx_audio_coreml.vocoders import VocoderFeatures

TINY = KokoroConfig(
    n_token=13,
    hidden_dim=8,
    style_dim=4,
    n_layer=2,
    max_dur=12,
    text_encoder_kernel_size=3,
    plbert=PLBertConfig(
        hidden_size=12,
        num_attention_heads=2,
        intermediate_size=16,
        max_position_embeddings=24,
        num_hidden_layers=2,
        embedding_size=6,
    ),
)
IDS = np.array([0, 4, 11, 2, 7, 7, 1, 0])


@pytest.fixture(scope="module")
def loaded() -> tuple[KokoroModel, dict[str, np.ndarray]]:
    model = KokoroModel(TINY, with_decoder=False)
    state = ref.random_canonical_state(model, seed=11, scale=0.3)
    # A steeper duration head, so durations differ between tokens (random LSTMs vary little per token).
    state["predictor.duration_proj.linear_layer.weight"] *= 20
    model.load_state(state)
    return model, state


def _style(seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(2 * TINY.style_dim).astype(np.float32)


@pytest.mark.parametrize("speed", [1.0, 0.7, 1.6])
def test_features_match_hexgrad_forward_in_numpy(loaded, speed: float) -> None:
    model, state = loaded
    style = _style()
    want = ref.features(IDS, style, state, TINY, speed)
    # Sums within 1e-3 of a rounding boundary could round either way in float32; this seed has none.
    assert np.min(np.abs(want["duration_sums"] % 1 - 0.5)) > 1e-3
    assert len(set(want["durations"].tolist())) > 1
    feats, durations = model.features(mx.array(IDS[None]), mx.array(style[None]), speed)
    assert isinstance(feats, VocoderFeatures)
    np.testing.assert_array_equal(np.array(durations), want["durations"])
    frames = int(want["durations"].sum())
    assert feats.asr.shape == (1, TINY.hidden_dim, frames)
    assert feats.f0.shape == feats.energy.shape == (1, 2 * frames)
    np.testing.assert_allclose(np.array(feats.asr[0]), want["asr"], rtol=1e-4, atol=2e-5)
    np.testing.assert_allclose(np.array(feats.f0[0]), want["f0"], rtol=1e-4, atol=5e-5)
    np.testing.assert_allclose(np.array(feats.energy[0]), want["n"], rtol=1e-4, atol=5e-5)
    np.testing.assert_array_equal(np.array(feats.style[0]), style[: TINY.style_dim])


def test_slower_speed_gives_at_least_as_many_frames(loaded) -> None:
    model, _ = loaded
    ids, style = mx.array(IDS[None]), mx.array(_style()[None])
    slow = np.array(model.features(ids, style, 0.5)[1])
    fast = np.array(model.features(ids, style, 2.0)[1])
    assert (slow >= fast).all() and slow.sum() > fast.sum()


def test_decoder_half_of_style_does_not_change_prosody(loaded) -> None:
    model, _ = loaded
    style = _style()
    other = style.copy()
    other[: TINY.style_dim] += 5.0
    a, da = model.features(mx.array(IDS[None]), mx.array(style[None]))
    b, db = model.features(mx.array(IDS[None]), mx.array(other[None]))
    np.testing.assert_array_equal(np.array(da), np.array(db))
    np.testing.assert_array_equal(np.array(a.f0), np.array(b.f0))
    assert not np.array_equal(np.array(a.style), np.array(b.style))


@pytest.mark.parametrize(
    ("ids", "style", "speed", "what"),
    [
        (np.zeros((2, 5), np.int32), np.zeros((1, 8), np.float32), 1.0, "token_ids"),
        (np.zeros((1, 30), np.int32), np.zeros((1, 8), np.float32), 1.0, "token_ids"),
        (np.array([[0, 13, 0]]), np.zeros((1, 8), np.float32), 1.0, "token_ids"),
        (np.array([[0, 3, 0]]), np.zeros((1, 7), np.float32), 1.0, "ref_style"),
        (np.array([[0, 3, 0]]), np.zeros((1, 8), np.float32), 0.0, "speed"),
    ],
    ids=["batch-2", "longer-than-positions", "id-out-of-vocab", "style-width", "zero-speed"],
)
def test_features_rejects_bad_inputs_naming_which(loaded, ids, style, speed, what) -> None:
    model, _ = loaded
    with pytest.raises(KokoroInputError) as info:
        model.features(mx.array(ids), mx.array(style), speed)
    assert info.value.what == what


def test_given_durations_replace_the_predicted_ones(loaded) -> None:
    model, _ = loaded
    ids, style = mx.array(IDS[None]), mx.array(_style()[None])
    predicted = model.durations(ids, style)
    same, _ = model.features(ids, style, durations=predicted)
    free, _ = model.features(ids, style)
    np.testing.assert_array_equal(np.array(same.f0), np.array(free.f0))
    forced = mx.array([1, 2, 3, 1, 1, 4, 2, 1])
    feats, used = model.features(ids, style, durations=forced)
    assert feats.frames == 15 and np.array(used).tolist() == [1, 2, 3, 1, 1, 4, 2, 1]


@pytest.mark.parametrize("durations", [[1, 2, 3], [1, 2, 3, 1, 0, 4, 2, 1]], ids=["wrong-length", "zero-frames"])
def test_given_durations_must_cover_every_token_with_a_frame(loaded, durations: list[int]) -> None:
    model, _ = loaded
    with pytest.raises(KokoroInputError) as info:
        model.features(mx.array(IDS[None]), mx.array(_style()[None]), durations=mx.array(durations))
    assert info.value.what == "durations"
