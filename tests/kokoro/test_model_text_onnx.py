"""Durations of the MLX model on the real (dequantized) weights against onnxruntime on the int8 graph.

The int8 graph quantizes activations dynamically, so the two disagree slightly before rounding;
equality is not expected. Measured (voice jf_alpha, speed 1, the five sentences below, 243 tokens):
every token within one frame, 8 tokens off by one, sentence totals within one frame, duration
sums before rounding 0.024-0.049 frames apart on average (at most 1.2, on a pause token).
"""

from __future__ import annotations

import json
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest
from onnx_reference import OnnxReference

from mlx_audio_coreml.kokoro.config import KokoroConfig
from mlx_audio_coreml.kokoro.model import KokoroModel
from mlx_audio_coreml.kokoro.weights.safetensors_io import read_safetensors

# Kokoro's phonemes, written by hand after `espeak-ng -q --ipa -v en-us` / `-v ja` (misaki's letters for diphthongs).
SHORT = "hˌW ɑɹ ju dˈuɪŋ tədˈA?"
SENTENCES = [
    "ðə kwˈɪk bɹˈWn fˈɑks ʤˈʌmps ˌOvəɹ ðə lˈAzi dˈɑɡ.",
    "kəkˈOɹO spˈiks wɪð ɐ ʤˈɛntᵊl vˈYs.",
    SHORT,
    "konnitɕiwa, kʲoːwa iː teŋki desɯne.",
    "ðɪs ɪz ɐ lˈɔŋɡəɹ sˈɛntəns, wɪð ɐ kˈɑmə ænd sˌʌm pˈɔzᵻz; tə tˈɛst ðə dʊɹˈAʃənz ʌv ˈɛvɹi tˈOkən.",
]


@pytest.fixture(scope="module")
def real(kokoro_dir: Path) -> tuple[KokoroModel, OnnxReference, np.ndarray]:
    config = KokoroConfig.from_dict(json.loads((kokoro_dir / "config.json").read_text()))
    model = KokoroModel(config, with_decoder=False)
    state = read_safetensors(kokoro_dir / "model.safetensors")
    model.load_state({k: v for k, v in state.items() if not k.startswith("decoder.")})
    reference = OnnxReference(kokoro_dir / "kokoro-v1.0.int8.onnx")
    return model, reference, np.load(kokoro_dir / "voices" / "jf_alpha.npy")


def _compare(real, phonemes: str, speed: float) -> tuple[np.ndarray, np.ndarray]:
    model, reference, voice = real
    ids = [model.config.vocab[p] for p in phonemes]
    tokens = [0, *ids, 0]
    style = voice[len(ids) - 1]  # (1, 256)
    ours = np.array(model.durations(mx.array([tokens]), mx.array(style), speed))
    theirs = reference.run(tokens, style, speed).durations
    return ours, theirs


def _assert_agree(ours: np.ndarray, theirs: np.ndarray) -> None:
    assert ours.shape == theirs.shape
    assert np.abs(ours - theirs).max() <= 1, (ours.tolist(), theirs.tolist())
    assert np.count_nonzero(ours != theirs) <= max(2, len(ours) // 10)
    assert abs(int(ours.sum()) - int(theirs.sum())) <= max(2, 0.02 * theirs.sum())


def test_durations_agree_with_onnxruntime_within_one_frame(real) -> None:
    _assert_agree(*_compare(real, SHORT, 1.0))


@pytest.mark.slow
@pytest.mark.parametrize("speed", [1.0, 1.3])
@pytest.mark.parametrize("phonemes", SENTENCES, ids=[f"s{i}" for i in range(len(SENTENCES))])
def test_durations_agree_with_onnxruntime_on_sentences(real, phonemes: str, speed: float) -> None:
    _assert_agree(*_compare(real, phonemes, speed))
