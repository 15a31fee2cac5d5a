"""KokoroSession on the real Kokoro-82M weights: the speech it makes is what Whisper hears (slow on a CPU)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import soxr
from text_support import needs_espeak

from mlx_audio_coreml.kokoro.session import KokoroSession
from speech_data import real_model_dir

pytestmark = [pytest.mark.slow, needs_espeak]


def _words(text: str) -> list[str]:
    return re.sub(r"[^a-z ]", "", text.lower()).split()


def _heard(audio: np.ndarray) -> str:
    """What Whisper tiny.en transcribes from 24 kHz audio."""
    if real_model_dir("tiny.en") is None:
        pytest.skip("Whisper tiny.en is not installed (scripts/fetch_models.sh tiny.en)")
    from mlx_audio_coreml.whisper.session import WhisperSession

    with WhisperSession.from_pretrained("tiny.en") as whisper:
        segments, _ = whisper.transcribe(soxr.resample(audio, 24000, 16000).astype(np.float32))
        return " ".join(s.text for s in segments)


@pytest.fixture(scope="module")
def session(kokoro_dir: Path) -> KokoroSession:
    return KokoroSession.from_pretrained(kokoro_dir, g2p="espeak")


def test_real_weights_speak_a_sentence_whisper_transcribes_exactly(session: KokoroSession) -> None:
    text = "The quick brown fox jumps over the lazy dog."
    audio, info = session.synthesize(text, voice="jf_alpha")
    assert info.duration_s > 1.5 and np.abs(audio).max() < 1.0
    assert _words(_heard(audio)) == _words(text)


def test_real_weights_stream_two_sentences_in_order(session: KokoroSession) -> None:
    pieces = list(session.stream("Good morning. It is a sunny day.", voice="jm_kumo"))
    assert [p.chunk.text for p in pieces] == ["Good morning.", "It is a sunny day."]
    heard = _words(_heard(np.concatenate([p.audio for p in pieces])))
    assert heard[:2] == ["good", "morning"] and "sunny" in heard
