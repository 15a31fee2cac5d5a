"""End to end with the real tiny.en weights from the local store and real speech (samples/jfk.wav)."""

from __future__ import annotations

import pytest
from loading_helpers import JFK, M1_MAC, REAL_STORE

import mlx_audio_coreml  # noqa: F401  (BLAS first)
from mlx_audio_coreml.loading.selection import LoadEnvironment
from mlx_audio_coreml.options import BackendPreference, Component, ModelLoadingOptions
from mlx_audio_coreml.progress import CoreMLUnavailable
from mlx_audio_coreml.whisper.session import WhisperSession, transcribe

pytestmark = pytest.mark.realweights


@pytest.fixture(scope="module")
def tiny_en():
    if not (REAL_STORE / "tiny.en" / "model.bin").is_file():
        pytest.skip("real tiny.en weights are not installed (scripts/fetch_models.sh)")
    return REAL_STORE / "tiny.en"


def _text(segments) -> str:
    return " ".join(s.text.strip() for s in segments).lower()


def test_one_call_transcribe_of_real_speech(tiny_en):
    events = []

    segments, info = transcribe(JFK, "tiny.en", progress_handler=events.append)

    text = _text(segments)
    assert "ask not what your country can do for you" in text and "ask what you can do for your country" in text
    assert info.language == "en"
    assert any(isinstance(e, CoreMLUnavailable) for e in events)  # this Linux box: ANE not supported


@pytest.mark.slow  # ~45 s on 2 cores: the conversion and the portable runtime's first graph build
def test_real_tiny_en_encoder_package_transcribes_like_mlx(tiny_en, tmp_path):
    """The real encoder converted to a Core ML package and run by the portable runtime gives the
    same transcript as the MLX encoder (this checks the conversion and the adapter, not Core ML)."""
    from mlx_audio_coreml.convert.whisper import ConvertOptions, convert_whisper

    package = convert_whisper(tiny_en, tmp_path, ConvertOptions(validate=False)).package
    options = ModelLoadingOptions(coreml_runtime="portable", coreml_sources={Component.ENCODER: package})
    coreml = WhisperSession.from_pretrained(tiny_en, options, environment=LoadEnvironment(device=M1_MAC))
    mlx = WhisperSession.from_pretrained(tiny_en, ModelLoadingOptions.mlx_only())
    assert (
        coreml.info.encoder_backend is BackendPreference.CORE_ML and mlx.info.encoder_backend is BackendPreference.MLX
    )

    via_package = _text(coreml.transcribe(JFK, temperature=0.0)[0])
    via_mlx = _text(mlx.transcribe(JFK, temperature=0.0)[0])

    assert via_package == via_mlx
    assert "ask not what your country can do for you" in via_package
