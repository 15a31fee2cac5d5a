"""Every client mistake gets OpenAI's error JSON and its status through the official client;
never a 500."""

from __future__ import annotations

import threading
import time

import httpx
import openai
import pytest


def _error(exc: openai.APIStatusError) -> dict:
    body = exc.response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


def test_unreadable_audio_is_400(client):
    with pytest.raises(openai.BadRequestError) as info:
        client.audio.transcriptions.create(file=("notes.wav", b"this is not audio at all"), model="tiny.en")
    error = _error(info.value)
    assert error["param"] == "file" and error["code"] == "invalid_audio"
    assert "mlx-audio-coreml-upload" not in error["message"]  # our temporary path stays private


def test_empty_audio_is_400(client):
    with pytest.raises(openai.BadRequestError) as info:
        client.audio.transcriptions.create(file=("empty.wav", b""), model="tiny.en")
    assert _error(info.value)["code"] == "empty_audio"


def test_bad_fields_are_400_naming_the_field(client, short_clip):
    cases = [
        ({"response_format": "docx"}, "response_format"),
        ({"timestamp_granularities": ["word"]}, "timestamp_granularities[]"),
        ({"temperature": 3.0}, "temperature"),
        ({"language": "xx"}, "language"),
    ]
    for fields, param in cases:
        with open(short_clip, "rb") as f, pytest.raises(openai.BadRequestError) as info:
            client.audio.transcriptions.create(file=f, model="tiny.en", **fields)
        assert _error(info.value)["param"] == param, fields


def test_unknown_models_are_404(client, short_clip):
    with open(short_clip, "rb") as f, pytest.raises(openai.NotFoundError) as info:
        client.audio.transcriptions.create(file=f, model="large-v9")
    assert _error(info.value)["code"] == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        client.audio.speech.create(model="kokoro-nope", voice="x", input="Hello.")
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("large-v9")


def test_speech_mistakes_are_400(client):
    with pytest.raises(openai.BadRequestError) as info:
        client.audio.speech.create(model="tone", voice="nobody", input="Hello.")
    assert _error(info.value)["param"] == "voice"
    with pytest.raises(openai.BadRequestError):
        client.audio.speech.create(model="tone", voice="tone", input="")
    with pytest.raises(openai.BadRequestError):
        client.audio.speech.create(model="tone", voice="tone", input="Hello.", response_format="opus")
    with pytest.raises(openai.BadRequestError):
        client.audio.speech.create(model="tone", voice="tone", input="Hello.", speed=9.0)


def test_missing_or_wrong_key_is_401(server_url):
    for key in ("wrong-key", ""):
        bad = openai.OpenAI(base_url=server_url + "/v1", api_key=key or "unused", max_retries=0)
        if not key:  # the client always sends a key: go below it for the missing one
            response = httpx.get(server_url + "/v1/models")
            assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"
            continue
        with pytest.raises(openai.AuthenticationError) as info:
            bad.models.list()
        assert _error(info.value)["code"] == "invalid_api_key"
    assert httpx.get(server_url + "/health").status_code == 200  # health and docs need no key
    assert httpx.get(server_url + "/docs").status_code == 200


def test_upload_over_the_limit_is_413(client, server_url):
    big = b"RIFF" + bytes(3 * 1024 * 1024)
    with pytest.raises(openai.APIStatusError) as info:
        client.audio.transcriptions.create(file=("big.wav", big), model="tiny.en")
    assert info.value.status_code == 413 and _error(info.value)["code"] == "upload_too_large"

    def chunks():  # no Content-Length: the bound is counted as the body arrives
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
        for _ in range(48):
            yield bytes(64 * 1024)
        yield b"\r\n--b--\r\n"

    response = httpx.post(
        server_url + "/v1/audio/transcriptions", content=chunks(),
        headers={"Authorization": "Bearer test-key", "Content-Type": "multipart/form-data; boundary=b"},
    )  # fmt: skip
    assert response.status_code == 413 and response.json()["error"]["code"] == "upload_too_large"


def test_unknown_route_is_404_in_openai_shape(server_url):
    response = httpx.get(server_url + "/v1/nothing-here", headers={"Authorization": "Bearer test-key"})
    assert response.status_code == 404 and set(response.json()["error"]) == {"message", "type", "param", "code"}


def test_full_queue_is_429_with_retry_after(tiny_en, short_clip):
    from mlx_audio_coreml.serve import ServedModels, ServeLimits, create_app
    from mlx_audio_coreml.serve.runner import BackgroundServer

    app = create_app(ServedModels(transcription={"tiny.en": tiny_en}), ServeLimits(max_queued=0))
    with BackgroundServer(app) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0, timeout=120)
        first: dict = {}

        def busy() -> None:
            with open(short_clip, "rb") as f:
                first["text"] = client.audio.transcriptions.create(file=f, model="tiny.en").text

        thread = threading.Thread(target=busy)
        thread.start()
        deadline = time.monotonic() + 30
        while httpx.get(url + "/health").json()["running"] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        with open(short_clip, "rb") as f, pytest.raises(openai.RateLimitError) as info:
            client.audio.transcriptions.create(file=f, model="tiny.en")
        thread.join()
    assert int(info.value.response.headers["Retry-After"]) >= 1
    assert _error(info.value)["code"] == "queue_full"
    assert first["text"]  # the running request was not disturbed
