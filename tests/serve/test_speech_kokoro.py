"""`/v1/audio/speech` with real Kokoro-82M through the official client, checked by ear: the same
server's Whisper transcribes what Kokoro said."""

from __future__ import annotations

import pytest

from speech_data import KOKORO_MISSING, real_kokoro_dir
from speech_data import text_similarity as similarity

pytestmark = [pytest.mark.slow, pytest.mark.realweights]

SENTENCE = "The quick brown fox jumps over the lazy dog."


def test_kokoro_speech_is_transcribed_back_to_its_text(tiny_en, tmp_path):
    import openai

    from mlx_audio_coreml.kokoro.session import KokoroSession
    from mlx_audio_coreml.serve import ServedModels, create_app
    from mlx_audio_coreml.serve.runner import BackgroundServer

    if real_kokoro_dir() is None:
        pytest.skip(KOKORO_MISSING)
    models = ServedModels(
        transcription={"tiny.en": tiny_en}, speech={"kokoro": KokoroSession.from_pretrained("kokoro")}
    )
    with BackgroundServer(create_app(models)) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0, timeout=600)
        speech = client.audio.speech.create(model="tts-1", voice="jf_alpha", input=SENTENCE, response_format="wav")
        path = tmp_path / "fox.wav"
        path.write_bytes(speech.content)
        with open(path, "rb") as f:
            heard = client.audio.transcriptions.create(file=f, model="tiny.en").text
    assert similarity(SENTENCE, heard) >= 0.8, heard
