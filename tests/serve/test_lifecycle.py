"""A client that leaves cancels its work; shutdown lets requests in flight finish. Driven by a
stand-in transcriber whose pace the test sets (serve_helpers.SlowTranscriber)."""

from __future__ import annotations

import threading
import time

import httpx
from serve_helpers import SlowTranscriber

from mlx_audio_coreml.serve import ServedModels, ServeLimits, create_app
from mlx_audio_coreml.serve.runner import BackgroundServer

WAV = ("a.wav", b"RIFF....WAVE", "audio/wav")  # the stand-in never reads it


def _app(session: SlowTranscriber):
    return create_app(ServedModels(transcription={"slow": session}), ServeLimits())


def test_client_leaving_a_stream_stops_its_transcription():
    slow = SlowTranscriber(n=50, pace_s=0.1)
    with BackgroundServer(_app(slow)) as url:
        with httpx.stream("POST", url + "/v1/audio/transcriptions", files={"file": WAV},
                          data={"model": "slow", "stream": "true"}, timeout=30) as response:  # fmt: skip
            lines = response.iter_lines()
            assert next(line for line in lines if line.startswith("data:"))
        assert slow.finished.wait(10)
    assert slow.consumed < 20  # 50 would take 5 s; it stopped soon after the client left


def test_client_leaving_a_plain_request_stops_its_transcription():
    slow = SlowTranscriber(n=50, pace_s=0.1)
    with BackgroundServer(_app(slow)) as url:
        try:
            httpx.post(url + "/v1/audio/transcriptions", files={"file": WAV}, data={"model": "slow"}, timeout=0.5)
        except httpx.TimeoutException:
            pass  # the client gives up and closes the connection
        assert slow.finished.wait(10)
    assert slow.consumed < 25


def test_shutdown_lets_the_request_in_flight_finish():
    slow = SlowTranscriber(n=10, pace_s=0.1)
    server = BackgroundServer(_app(slow))
    url = server.__enter__()
    result: dict = {}

    def request() -> None:
        result["response"] = httpx.post(url + "/v1/audio/transcriptions", files={"file": WAV},
                                        data={"model": "slow"}, timeout=30)  # fmt: skip

    thread = threading.Thread(target=request)
    thread.start()
    while slow.consumed == 0:
        time.sleep(0.01)
    server.stop()  # asks uvicorn to exit while the request runs
    thread.join()
    response = result["response"]
    assert response.status_code == 200
    assert response.json()["text"] == " ".join(f"word{i}" for i in range(10))
