"""Fixtures for the VAD tests: the installed Silero model and real speech placed in noise."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

import mlx_audio_coreml  # noqa: F401  (OpenBLAS before mlx.core)
from speech_data import JFK


@pytest.fixture(scope="session")
def vad_model():
    from mlx_audio_coreml.errors.vad import VadError
    from mlx_audio_coreml.vad import SileroVad

    try:
        return SileroVad.shared()
    except VadError as exc:
        pytest.skip(f"Silero VAD not installed ({exc})")


@pytest.fixture(scope="session")
def jfk() -> np.ndarray:
    samples, rate = sf.read(JFK, dtype="float32")
    assert rate == 16000
    return samples
