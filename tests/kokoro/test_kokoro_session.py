"""KokoroSession on a tiny random model: loading, info, synthesize/stream, and every input error raised before audio."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from session_tiny import SAMPLES_PER_FRAME, VOICES, build_tiny_folder
from text_support import needs_espeak

from mlx_audio_coreml.errors import (
    EmptyText,
    ModelNotFound,
    SpeedOutOfRange,
    UnknownPhoneme,
    UnknownVoice,
    UnsupportedSampleRate,
)
from mlx_audio_coreml.kokoro.session import KokoroSession
from mlx_audio_coreml.options import BackendPreference, Component, ModelLoadingOptions
from mlx_audio_coreml.progress import CoreMLUnavailable, Loading, WhisperProgress

TEXT = "Hello world. How are you today?"


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_folder(tmp_path_factory.mktemp("kokoro-tiny"))


@pytest.fixture(scope="module")
def session(tiny_folder: Path) -> KokoroSession:
    return KokoroSession.from_pretrained(tiny_folder, g2p="espeak")


@needs_espeak
def test_synthesize_returns_24khz_float32_audio_of_the_predicted_length(session: KokoroSession) -> None:
    audio, info = session.synthesize(TEXT, voice="af_test")
    assert audio.dtype == np.float32 and audio.ndim == 1 and np.all(np.isfinite(audio))
    assert info.sample_rate == 24000 and info.duration_s == pytest.approx(len(audio) / 24000)
    # One merged chunk; every token (pads included) lasts one frame in the tiny model.
    assert [c.text for c in info.chunks] == [TEXT]
    assert len(audio) == (len(info.chunks[0].token_ids) + 2) * SAMPLES_PER_FRAME
    assert info.voice == "af_test" and info.speed == 1.0 and info.language == "en-us"
    assert info.g2p.startswith("espeak-ng") and info.vocoder_backend is BackendPreference.MLX
    assert info.phonemes == "həlˈO wˈɜɹld. hˌW ɑɹ ju tədˈA?"


@needs_espeak
def test_stream_yields_one_piece_per_sentence_in_order(session: KokoroSession) -> None:
    pieces = list(session.stream(TEXT, voice="af_test"))
    assert [p.chunk.text for p in pieces] == ["Hello world.", "How are you today?"]
    assert [(p.index, p.total) for p in pieces] == [(0, 2), (1, 2)]
    for piece in pieces:
        assert len(piece.audio) == int(piece.durations.sum()) * SAMPLES_PER_FRAME


@needs_espeak
def test_same_input_gives_the_same_audio(session: KokoroSession) -> None:
    first = next(session.stream("Again.", voice="bf_other")).audio
    second = next(session.stream("Again.", voice="bf_other")).audio
    assert np.array_equal(first, second)


def test_phonemes_skip_g2p(session: KokoroSession) -> None:
    audio, info = session.synthesize(phonemes="həlˈO wˈɜɹld.", voice="af_test")
    assert info.g2p == "phonemes given" and info.phonemes == "həlˈO wˈɜɹld."
    assert len(audio) == (len("həlˈO wˈɜɹld.") + 2) * SAMPLES_PER_FRAME


def test_default_voice_is_the_first_installed_when_af_heart_is_absent(session: KokoroSession) -> None:
    assert session.voices() == sorted(VOICES) and session.default_voice == "af_test"


@needs_espeak
@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda s: s.synthesize("...", voice="af_test"), EmptyText),
        (lambda s: s.synthesize("", voice="af_test"), EmptyText),
        (lambda s: s.synthesize("Hi.", voice="nobody"), UnknownVoice),
        (lambda s: s.synthesize("Hi.", voice="af_test", speed=0.4), SpeedOutOfRange),
        (lambda s: s.synthesize("Hi.", voice="af_test", speed=2.5), SpeedOutOfRange),
        (lambda s: s.synthesize("Hi.", voice="af_test", speed=math.nan), SpeedOutOfRange),
        (lambda s: s.synthesize("Hi.", voice="af_test", sample_rate=22050), UnsupportedSampleRate),
        (lambda s: s.synthesize(phonemes="hˈI Ʃ", voice="af_test"), UnknownPhoneme),
        # stream checks at call time, before the first piece is asked for
        (lambda s: s.stream("Hi.", voice="nobody"), UnknownVoice),
        (lambda s: s.stream("?!", voice="af_test"), EmptyText),
    ],
)
def test_bad_input_is_a_typed_error_before_any_audio(session: KokoroSession, call, error: type) -> None:
    with pytest.raises(error):
        call(session)


def test_unknown_voice_error_lists_the_known_voices(session: KokoroSession) -> None:
    with pytest.raises(UnknownVoice) as caught:
        session.stream(phonemes="hˈI", voice="af_heart")
    assert caught.value.known == sorted(VOICES)


def test_unsupported_sample_rate_names_the_supported_one(session: KokoroSession) -> None:
    with pytest.raises(UnsupportedSampleRate) as caught:
        session.stream(phonemes="hˈI", voice="af_test", sample_rate=16000)
    assert caught.value.supported == [24000]


def test_missing_model_is_model_not_found_with_a_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLX_AUDIO_COREML_HOME", str(tmp_path))
    with pytest.raises(ModelNotFound) as caught:
        KokoroSession.from_pretrained("kokoro-not-installed")
    assert "fetch_models.sh kokoro" in caught.value.hint
    with pytest.raises(ModelNotFound):  # a path that does not exist is not taken for a hub repo id
        KokoroSession.from_pretrained(tmp_path / "absent")


def test_background_load_reports_a_missing_model_on_first_use(tmp_path: Path) -> None:
    session = KokoroSession.from_pretrained(tmp_path / "absent", ModelLoadingOptions(load_in_background=True))
    with pytest.raises(ModelNotFound):
        session.voices()


@pytest.mark.parametrize(
    ("preference", "fallback"),
    [(BackendPreference.MLX, False), (BackendPreference.AUTO, False), (BackendPreference.CORE_ML, True)],
)
def test_vocoder_backend_is_recorded_with_its_reason(
    tiny_folder: Path, preference: BackendPreference, fallback: bool
) -> None:
    # No vocoder package exists for the tiny model: MLX runs whatever was asked; only a demand
    # for Core ML is a fallback (auto never tried it).
    events: list[WhisperProgress] = []
    options = ModelLoadingOptions(backend_overrides={Component.VOCODER: preference})
    session = KokoroSession.from_pretrained(tiny_folder, options, events.append, g2p="espeak")
    info = session.info
    assert info.vocoder_backend is BackendPreference.MLX and info.did_fallback is fallback
    assert session.vocoder.backend == "mlx"
    vocoder = info.component(Component.VOCODER)
    assert vocoder is not None and vocoder.requested is preference and vocoder.reason
    assert events[0] == Loading(0.0) and events[1] == Loading(1.0)
    assert any(isinstance(e, CoreMLUnavailable) for e in events) is (preference is not BackendPreference.MLX)
    assert info.load_duration_s > 0
