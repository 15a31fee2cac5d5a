"""Fixtures for the decoding tests: a tiny random Whisper, the fake tokenizer, real tiny.en / base."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
from decode_helpers import FakeTokenizer, tiny_random_model

import mlx_audio_coreml  # noqa: F401  (OpenBLAS before mlx.core)


@pytest.fixture
def fake_tokenizer() -> FakeTokenizer:
    return FakeTokenizer()


@pytest.fixture(scope="module")
def tiny_model():
    return tiny_random_model()


@pytest.fixture(scope="module")
def audio_features(tiny_model):
    rng = np.random.default_rng(1)
    return mx.array(
        rng.standard_normal((1, tiny_model.dims.n_audio_ctx, tiny_model.dims.n_audio_state)).astype(np.float32)
    )


def _bundle(name: str):
    from mlx_audio_coreml.whisper.loading import load_whisper
    from mlx_audio_coreml.whisper.model_names import local_store

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
