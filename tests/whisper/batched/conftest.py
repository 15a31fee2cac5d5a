"""Shared for the batched-transcription tests: one real tiny.en session."""

from __future__ import annotations

import pytest

from speech_data import real_model_dir


@pytest.fixture(scope="session")
def tiny_session():
    path = real_model_dir("tiny.en")
    if path is None:
        pytest.skip("real tiny.en weights not installed: run `bash scripts/fetch_models.sh tiny.en`")
    from mlx_audio_coreml.whisper.session import WhisperSession

    with WhisperSession.from_pretrained(str(path)) as session:
        yield session
