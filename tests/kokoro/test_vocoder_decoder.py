"""The whole decoder on a tiny random config: lengths, seeded noise, strict loading, shape errors, MLXVocoder."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
from mlx.utils import tree_flatten

import mlx_audio_coreml  # noqa: F401  (BLAS first)
from mlx_audio_coreml.errors import KokoroStateMismatch, UnsupportedSampleRate, VocoderShapeConversionFailed
from mlx_audio_coreml.kokoro.config import ISTFTNetConfig
from mlx_audio_coreml.kokoro.model.decoder import Decoder
from mlx_audio_coreml.vocoders import AudioVocoder, MLXVocoder, VocoderFeatures

TINY = ISTFTNetConfig(
    upsample_rates=(2, 4),  # kernels 2x the rates, as hexgrad's: the stages then line up with the source's STFT frames
    upsample_kernel_sizes=(4, 8),
    upsample_initial_channel=8,
    resblock_kernel_sizes=(3, 5),
    resblock_dilation_sizes=((1, 3), (1, 2)),
    gen_istft_n_fft=8,
    gen_istft_hop_size=2,
)
DIM_IN, STYLE = 6, 4


@pytest.fixture(scope="module")
def decoder() -> Decoder:
    mx.random.seed(0)
    model = Decoder(DIM_IN, STYLE, TINY, hidden=12, asr_res_dim=3)
    mx.eval(model.parameters())
    return model


def features(frames: int, seed: int = 0) -> VocoderFeatures:
    rng = np.random.default_rng(seed)
    f0 = 120 + 60 * rng.random((1, 2 * frames))
    f0[0, :4] = 0.0  # a little unvoiced stretch
    return VocoderFeatures(
        asr=mx.array(rng.standard_normal((1, DIM_IN, frames)), mx.float32),
        f0=mx.array(f0, mx.float32),
        energy=mx.array(rng.standard_normal((1, 2 * frames)), mx.float32),
        style=mx.array(rng.standard_normal((1, STYLE)), mx.float32),
    )


@pytest.mark.parametrize("frames", [3, 10])
def test_audio_length_is_fixed_per_text_frame(decoder, frames):
    audio = decoder(features(frames), key=mx.random.key(0))
    # 2 F0 frames per text frame, each prod(upsample_rates) * hop samples
    assert decoder.samples_per_frame == 2 * 2 * 4 * 2
    assert audio.shape == (1, frames * decoder.samples_per_frame)
    assert np.isfinite(np.array(audio)).all()


def test_kokoro_decoder_gives_600_samples_per_text_frame():
    assert Decoder().samples_per_frame == 600  # (10 * 6 upsampling) * hop 5 per F0 frame, 2 F0 frames per text frame


def test_same_seed_same_audio_different_seed_different_audio(decoder):
    feats = features(6)
    first = np.array(MLXVocoder(decoder, seed=3).decode(feats))
    again = np.array(MLXVocoder(decoder, seed=3).decode(feats))
    other = np.array(MLXVocoder(decoder, seed=4).decode(feats))
    assert np.array_equal(first, again)
    assert not np.allclose(first, other, atol=1e-6)


def test_without_a_key_the_source_adds_no_noise(decoder):
    feats = features(6)
    clean = np.array(decoder(feats))
    assert np.array_equal(clean, np.array(MLXVocoder(decoder, seed=None).decode(feats)))
    assert not np.allclose(clean, np.array(decoder(feats, key=mx.random.key(0))), atol=1e-6)


def test_mlx_vocoder_produces_24khz_only(decoder):
    vocoder = MLXVocoder(decoder)
    assert isinstance(vocoder, AudioVocoder) and vocoder.sample_rate == 24000 and vocoder.backend == "mlx"
    with pytest.raises(UnsupportedSampleRate) as raised:
        MLXVocoder(decoder, sample_rate=16000)
    assert raised.value.sample_rate == 16000 and raised.value.supported == [24000]


def test_features_with_mismatched_shapes_are_refused_naming_expected_and_got():
    good = features(5)
    with pytest.raises(VocoderShapeConversionFailed) as raised:
        VocoderFeatures(good.asr, good.f0[:, :-1], good.energy, good.style)
    assert raised.value.expected == [1, 10] and raised.value.got == [1, 9]
    with pytest.raises(VocoderShapeConversionFailed):
        VocoderFeatures(good.asr[0], good.f0, good.energy, good.style)
    with pytest.raises(VocoderShapeConversionFailed) as raised:
        VocoderFeatures(good.asr, good.f0, good.energy, mx.zeros((2, STYLE)))
    assert raised.value.expected == [1, -1] and raised.value.got == [2, STYLE]


def test_decoder_refuses_features_of_another_width(decoder):
    good = features(5)
    with pytest.raises(VocoderShapeConversionFailed) as raised:
        decoder(VocoderFeatures(mx.zeros((1, DIM_IN + 1, 5)), good.f0, good.energy, good.style))
    assert raised.value.expected == [1, DIM_IN, 5] and raised.value.got == [1, DIM_IN + 1, 5]
    with pytest.raises(VocoderShapeConversionFailed):
        decoder(VocoderFeatures(good.asr, good.f0, good.energy, mx.zeros((1, STYLE + 2))))


def canonical_state(model: Decoder) -> dict[str, np.ndarray]:
    """The model's own weights as a canonical state: `decoder.` names, PyTorch layouts."""
    modules = dict(model.named_modules())
    state = {}
    for name, value in tree_flatten(model.parameters()):
        array = np.array(value)
        owner = type(modules.get(name.rsplit(".", 1)[0])).__name__
        if ".alpha" in name:
            array = array.transpose(0, 2, 1)  # (1, 1, C) -> (1, C, 1)
        elif name.endswith(".weight") and owner == "ConvTranspose1d":
            array = array.transpose(2, 0, 1)  # (out, k, in) -> (in, out, k)
        elif name.endswith(".weight") and owner in ("Conv1d", "DepthwiseConvTranspose1d"):
            array = array.transpose(0, 2, 1)  # (out, k, in) -> (out, in, k); depthwise (C, 3, 1) -> (C, 1, 3)
        state["decoder." + name] = array
    return state


def test_load_state_round_trips_canonical_weights(decoder):
    state = canonical_state(decoder)
    assert sorted(state) == decoder.state_keys()
    assert state["decoder.generator.ups.0.weight"].shape == (8, 4, 4)  # PyTorch (in, out, k)
    assert state["decoder.generator.resblocks.0.alpha1.0"].shape == (1, 4, 1)
    copy = Decoder(DIM_IN, STYLE, TINY, hidden=12, asr_res_dim=3)
    copy.load_state({**state, "predictor.other.weight": np.zeros(3)})  # other parts' keys are not ours
    feats = features(4)
    assert np.array_equal(np.array(copy(feats)), np.array(decoder(feats)))


def test_load_state_names_every_missing_unexpected_and_misshapen_key(decoder):
    state = canonical_state(decoder)
    del state["decoder.generator.conv_post.bias"]
    state["decoder.generator.extra.weight"] = np.zeros(2, np.float32)
    state["decoder.F0_conv.weight"] = np.zeros((1, 1, 5), np.float32)
    with pytest.raises(KokoroStateMismatch) as raised:
        Decoder(DIM_IN, STYLE, TINY, hidden=12, asr_res_dim=3).load_state(state)
    assert raised.value.missing == ["decoder.generator.conv_post.bias"]
    assert raised.value.unexpected == ["decoder.generator.extra.weight"]
    assert len(raised.value.shape_errors) == 1 and raised.value.shape_errors[0].startswith("decoder.F0_conv.weight")


def test_a_batch_decodes_like_its_items_one_by_one(decoder):
    one, two = features(5, seed=1), features(5, seed=2)
    both = VocoderFeatures(*(mx.concatenate([a, b]) for a, b in zip(one.arrays().values(), two.arrays().values())))
    batched = np.array(decoder(both))
    assert batched.shape[0] == 2
    np.testing.assert_allclose(batched[0], np.array(decoder(one))[0], atol=1e-4)
    np.testing.assert_allclose(batched[1], np.array(decoder(two))[0], atol=1e-4)
