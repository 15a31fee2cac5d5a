"""Parity with a reference nobody here wrote: CTranslate2 (faster-whisper's engine) on real weights.

The mel is computed once by our front end and the same numbers go to both engines; the greedy
token sequence (plain argmax, no suppression) must be identical. The greedy loop is written here,
independent of whisper/decoding.py.
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
from model_helpers import JFK, greedy_tokens, librivox_clips

from mlx_audio_coreml.whisper.audio import N_FRAMES, N_SAMPLES, load_audio
from mlx_audio_coreml.whisper.loading import load_whisper
from mlx_audio_coreml.whisper.mel import log_mel_spectrogram

ctranslate2 = pytest.importorskip("ctranslate2")
pytestmark = pytest.mark.realweights

CLIPS = [JFK, *[path for path, _ in librivox_clips() if path.stem.endswith(("0870", "0920"))]]


def first_window_mel(path, n_mels: int) -> np.ndarray:
    """(n_mels, 3000) float32: the clip, zero-padded to 30 s, as Whisper's transcribe sees it."""
    mel = log_mel_spectrogram(load_audio(path), n_mels=n_mels, padding=N_SAMPLES)[:, :N_FRAMES]
    return np.ascontiguousarray(np.array(mel))


def ctranslate2_greedy(engine, mel: np.ndarray, prompt: list[int]) -> list[int]:
    features = ctranslate2.StorageView.from_array(mel[None])
    result = engine.generate(features, [prompt], beam_size=1, max_length=224, suppress_blank=False, suppress_tokens=[])
    return result[0].sequences_ids[0]


def check_parity(model_dir, multilingual_prompt: bool) -> None:
    assert len(CLIPS) == 3, "jfk.wav and two LibriVox clips expected"
    bundle = load_whisper(model_dir, dtype=mx.float32)
    tokenizer = bundle.get_tokenizer(language="en", task="transcribe") if multilingual_prompt else bundle.tokenizer
    prompt = list(tokenizer.sot_sequence_including_notimestamps)
    engine = ctranslate2.models.Whisper(str(model_dir), device="cpu", compute_type="float32", intra_threads=2)
    for clip in CLIPS:
        mel = first_window_mel(clip, bundle.dims.n_mels)
        ours = greedy_tokens(bundle.model, mx.array(mel.T), prompt, tokenizer.eot, max_tokens=224)
        theirs = ctranslate2_greedy(engine, mel, prompt)
        assert ours == theirs, f"{clip.name}: {tokenizer.decode(ours)!r} vs {tokenizer.decode(theirs)!r}"
        assert len(ours) > 5


def test_tiny_en_greedy_tokens_equal_ctranslate2s(tiny_en_dir):
    check_parity(tiny_en_dir, multilingual_prompt=False)


@pytest.mark.slow
def test_base_greedy_tokens_equal_ctranslate2s(base_dir):
    check_parity(base_dir, multilingual_prompt=True)


def test_tiny_en_encoder_states_match_ctranslate2s(tiny_en_dir):
    bundle = load_whisper(tiny_en_dir, dtype=mx.float32)
    mel = first_window_mel(JFK, 80)
    ours = np.array(bundle.model.encoder(mx.array(mel.T)[None]))
    engine = ctranslate2.models.Whisper(str(tiny_en_dir), device="cpu", compute_type="float32", intra_threads=2)
    theirs = np.array(engine.encode(ctranslate2.StorageView.from_array(mel[None]), to_cpu=True))
    np.testing.assert_allclose(ours, theirs, atol=5e-4, rtol=0)


def test_jfk_greedy_text_is_the_known_sentence(tiny_en_dir):
    bundle = load_whisper(tiny_en_dir)
    prompt = list(bundle.tokenizer.sot_sequence_including_notimestamps)
    tokens = greedy_tokens(bundle.model, mx.array(first_window_mel(JFK, 80).T), prompt, bundle.tokenizer.eot)
    text = bundle.tokenizer.decode(tokens).strip().lower()
    words = "".join(c for c in text if c.isalpha() or c == " ").split()
    assert (
        words
        == "and so my fellow americans ask not what your country can do for you ask what you can do for your country".split()
    )
