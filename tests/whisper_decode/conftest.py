"""Fixtures for the decoding tests: a tiny random Whisper, the fake tokenizer, real tiny.en / base."""

from __future__ import annotations

import re
from pathlib import Path

import mlx_audio_coreml  # noqa: F401  (OpenBLAS before mlx.core)
import pytest

import mlx.core as mx
import numpy as np

from decode_helpers import FAKE_VOCAB, FakeTokenizer

REPO = Path(__file__).resolve().parents[2]
JFK = REPO / "samples" / "jfk.wav"
JFK_TEXT = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."
LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")


def librivox_clips() -> list[tuple[Path, str]]:
    """(wav, reference text) for every clip listed in the folder's `transcription` file."""
    listing = LIBRIVOX / "transcription"
    if not listing.is_file():
        return []
    clips = []
    for line in listing.read_text().splitlines():
        match = re.fullmatch(r"<s> (.*) </s> \((\S+)\)", line.strip())
        if match and (LIBRIVOX / f"{match.group(2)}.wav").is_file():
            clips.append((LIBRIVOX / f"{match.group(2)}.wav", match.group(1)))
    return clips


@pytest.fixture
def fake_tokenizer() -> FakeTokenizer:
    return FakeTokenizer()


def tiny_random_model(seed: int = 0, n_text_ctx: int = 64, n_audio_ctx: int = 32):
    """A 2-layer random Whisper over the fake tokenizer's 200-token vocabulary."""
    from mlx_audio_coreml.whisper.model import ModelDimensions, Whisper

    dims = ModelDimensions(
        n_mels=80, n_audio_ctx=n_audio_ctx, n_audio_state=32, n_audio_head=2, n_audio_layer=1,
        n_vocab=FAKE_VOCAB, n_text_ctx=n_text_ctx, n_text_state=32, n_text_head=2, n_text_layer=2,
    )  # fmt: skip
    mx.random.seed(seed)
    model = Whisper(dims, mx.float32)
    # sharper token distributions than the default init, so searches have something to find
    model.decoder.token_embedding.weight = model.decoder.token_embedding.weight * 3.0
    mx.eval(model.parameters())
    return model


@pytest.fixture(scope="module")
def tiny_model():
    return tiny_random_model()


@pytest.fixture(scope="module")
def audio_features(tiny_model):
    rng = np.random.default_rng(1)
    return mx.array(rng.standard_normal((1, tiny_model.dims.n_audio_ctx, tiny_model.dims.n_audio_state)).astype(np.float32))


def _bundle(name: str):
    from mlx_audio_coreml.whisper.loading import load_whisper
    from mlx_audio_coreml.whisper.models import local_store

    path = local_store() / name
    if not (path / "model.bin").is_file() and not (path / "config.json").is_file():
        pytest.skip(f"real weights for {name} not installed (scripts/fetch_models.sh)")
    return load_whisper(path)


def _transcriber(bundle):
    from mlx_audio_coreml.encoders import MLXAudioEncoder
    from mlx_audio_coreml.whisper.transcribe import Transcriber

    return Transcriber(bundle, MLXAudioEncoder(bundle.model.encoder, bundle.dims.n_mels))


@pytest.fixture(scope="session")
def tiny_en_bundle():
    return _bundle("tiny.en")


@pytest.fixture(scope="session")
def tiny_en(tiny_en_bundle):
    return _transcriber(tiny_en_bundle)


@pytest.fixture(scope="session")
def base_transcriber():
    return _transcriber(_bundle("base"))

