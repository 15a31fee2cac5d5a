"""The decoder on Kokoro-82M's real weights, fed the int8 ONNX graph's own decoder inputs, against the graph's audio.

The graph's inverse STFT skips torch.istft's window-envelope normalization (it divides only its first 20
samples), so its audio is exactly 1.5x torch.istft's from sample 10 on; ours follows torch.istft, so the
comparison scales ours by 1.5 and drops the first 10 samples. The graph also quantizes activations to int8
and adds no source noise: we run without noise (key=None) and bound a log-mel distance, not samples.
Measured (jf_alpha, jm_kumo): 0.76 / 0.50 dB, waveform correlation 0.986 / 0.982; the same decoder with
another voice's decoder style (jf_nezumi) is 3.9 / 3.2 dB away, so the 1.2 dB bound tells them apart.
hexgrad's own PyTorch decoder on the same inputs and weights is 0.76 dB from the graph too (jf_alpha), and
0.09 dB from ours (test_vocoder_hexgrad.py): the distance to the graph is its int8 arithmetic.
"""

from __future__ import annotations

import json

import mlx.core as mx
import numpy as np
import pytest
from audio_distance import log_mel_distance
from onnx_reference import OnnxReference

import mlx_audio_coreml  # noqa: F401  (BLAS first)
from mlx_audio_coreml.kokoro.config import KokoroConfig
from mlx_audio_coreml.kokoro.model.decoder import Decoder
from mlx_audio_coreml.kokoro.weights.safetensors_io import read_safetensors
from mlx_audio_coreml.vocoders import VocoderFeatures

pytestmark = pytest.mark.slow

# "The quick brown fox" in Kokoro's phonemes (espeak-ng's IPA as misaki maps it).
PHONEMES = "ðə kwˈɪk bɹˈaʊn fˈɑːks"
GRAPH_INPUTS = ("/encoder/MatMul_1_output_0", "/encoder/Reshape_output_0", "/encoder/Reshape_1_output_0")
GRAPH_GAIN = 1.5  # the graph's missing 1 / sum(window^2) for a Hann window of 20 with hop 5
SKIP = 10  # the graph's first n_fft / 2 samples are divided by the window alone


@pytest.fixture(scope="module")
def config(kokoro_dir) -> dict:
    return json.loads((kokoro_dir / "config.json").read_text())


@pytest.fixture(scope="module")
def decoder(kokoro_dir, config) -> Decoder:
    model = Decoder.from_config(KokoroConfig.from_dict(config))
    model.load_state(read_safetensors(kokoro_dir / "model.safetensors"))
    return model


@pytest.fixture(scope="module")
def graph(kokoro_dir) -> OnnxReference:
    return OnnxReference(kokoro_dir / "kokoro-v1.0.int8.onnx", extra_outputs=GRAPH_INPUTS)


def token_ids(config: dict) -> list[int]:
    return [0] + [config["vocab"][p] for p in PHONEMES if p in config["vocab"]] + [0]


def reference_style(kokoro_dir, config, voice: str) -> np.ndarray:
    """(1, 256): the pack's row for this many phonemes (pads excluded)."""
    return np.load(kokoro_dir / "voices" / f"{voice}.npy")[len(token_ids(config)) - 3].reshape(1, 256)


def graph_run(graph, kokoro_dir, config, voice: str) -> tuple[VocoderFeatures, np.ndarray]:
    """The graph's decoder inputs (as VocoderFeatures with the voice's decoder style) and its audio."""
    style = reference_style(kokoro_dir, config, voice)
    out = graph.run(token_ids(config), style)
    asr, f0, energy = (mx.array(out.extras[name]) for name in GRAPH_INPUTS)
    return VocoderFeatures(asr, f0, energy, mx.array(style[:, :128])), out.audio


@pytest.mark.parametrize("voice", ["jf_alpha", "jm_kumo"])
def test_decoder_matches_the_int8_graph_on_its_own_features(decoder, graph, kokoro_dir, config, voice):
    features, reference = graph_run(graph, kokoro_dir, config, voice)

    audio = np.array(decoder(features))[0]

    assert audio.shape == (features.frames * 600,) == reference.shape
    assert np.isfinite(audio).all()
    ours, theirs = GRAPH_GAIN * audio[SKIP:], reference[SKIP:]
    assert log_mel_distance(ours, theirs) < 1.2
    assert np.corrcoef(ours, theirs)[0, 1] > 0.95
    assert 0.9 < np.sqrt(np.mean(theirs**2) / np.mean(ours**2)) < 1.1  # measured 0.95-0.97: int8 is a bit quieter


def test_decoder_output_is_speech_like(decoder, graph, kokoro_dir, config):
    features, _ = graph_run(graph, kokoro_dir, config, "jf_alpha")
    audio = np.array(decoder(features, key=mx.random.key(0)))[0]

    assert np.isfinite(audio).all() and np.abs(audio).max() < 1.0  # no clipping
    frames = audio[: len(audio) // 480 * 480].reshape(-1, 480)  # 20 ms frames
    energy = np.sort(np.mean(frames**2, axis=1))
    assert energy[-1] > 1e-3  # loud parts
    assert energy[int(0.9 * len(energy))] > 30 * energy[int(0.1 * len(energy))]  # syllables and pauses, not a drone
    spectrum = np.abs(np.fft.rfft(audio)) ** 2
    freqs = np.fft.rfftfreq(len(audio), 1 / 24000)
    assert spectrum[(freqs > 80) & (freqs < 4000)].sum() > 0.8 * spectrum.sum()  # speech band


def test_another_voices_decoder_style_is_told_apart(decoder, graph, kokoro_dir, config):
    """The bound above is meaningful: the same features with jf_nezumi's decoder style are far from jf_alpha's audio."""
    features, reference = graph_run(graph, kokoro_dir, config, "jf_alpha")
    other_style = reference_style(kokoro_dir, config, "jf_nezumi")
    other = VocoderFeatures(features.asr, features.f0, features.energy, mx.array(other_style[:, :128]))
    audio = np.array(decoder(other))[0]
    assert log_mel_distance(GRAPH_GAIN * audio[SKIP:], reference[SKIP:]) > 2.5


def test_harmonic_source_matches_the_graphs(decoder, kokoro_dir, config):
    """SineGen + l_linear + tanh against the graph's (float32, no int8 there): measured max difference 4.9e-4
    on a 0.145 peak, the graph's own float32 phase drift (ours keeps the phase modulo one cycle)."""
    names = ("/encoder/Reshape_output_0", "/decoder/decoder/generator/m_source/l_tanh/Tanh_output_0")
    style = reference_style(kokoro_dir, config, "jf_alpha")
    out = OnnxReference(kokoro_dir / "kokoro-v1.0.int8.onnx", extra_outputs=names).run(token_ids(config), style)
    f0, expected = (out.extras[name] for name in names)

    source = np.array(decoder.generator.m_source(mx.array(f0), None))

    assert source.shape == (1, f0.shape[1] * 300)
    np.testing.assert_allclose(source.reshape(-1), expected.reshape(-1), atol=2e-3)
