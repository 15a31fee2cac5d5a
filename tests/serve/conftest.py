"""A server on loopback with real tiny.en, and short real clips written as files for upload."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

import mlx_audio_coreml  # noqa: F401  (OpenBLAS before mlx.core)
from speech_data import JFK, real_model_dir


@pytest.fixture(scope="session")
def tiny_en():
    import mlx_audio_coreml as mac

    if real_model_dir("tiny.en") is None:
        pytest.skip("real tiny.en weights not installed (scripts/fetch_models.sh)")
    return mac.WhisperSession.from_pretrained("tiny.en")


@pytest.fixture(scope="session")
def short_clip(tmp_path_factory) -> str:
    """The first 7.8 s of jfk.wav: "And so my fellow Americans, ask not what your country can do for you"."""
    samples, rate = sf.read(JFK, dtype="float32")
    path = tmp_path_factory.mktemp("clips") / "ask_not.wav"
    sf.write(path, samples[: int(7.8 * rate)], rate)
    return str(path)


@pytest.fixture(scope="session")
def server_url(tiny_en):
    from serve_helpers import ToneSpeech

    from mlx_audio_coreml.serve import ServedModels, ServeLimits, create_app
    from mlx_audio_coreml.serve.runner import BackgroundServer

    models = ServedModels(transcription={"tiny.en": tiny_en}, speech={"tone": ToneSpeech()})
    app = create_app(models, ServeLimits(api_key="test-key", max_upload_bytes=2 * 1024 * 1024, max_queued=4))
    with BackgroundServer(app) as url:
        yield url


@pytest.fixture
def client(server_url):
    import openai

    return openai.OpenAI(base_url=server_url + "/v1", api_key="test-key", max_retries=0, timeout=120)


@pytest.fixture(scope="session")
def silence_wav(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("clips") / "silence.wav"
    sf.write(path, np.zeros(16000, np.float32), 16000)
    return str(path)
