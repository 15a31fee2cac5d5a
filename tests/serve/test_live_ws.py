"""Live transcription over the server's WebSocket: real tiny.en, real speech sent as 16-bit PCM."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from speech_data import JFK, JFK_TEXT
from speech_data import text_similarity as similarity

websockets_sync = pytest.importorskip("websockets.sync.client")

pytestmark = pytest.mark.realweights


def _connect(server_url: str, key: str = "test-key"):
    url = server_url.replace("http://", "ws://") + "/v1/audio/live?model=tiny.en"
    return websockets_sync.connect(url, additional_headers={"Authorization": f"Bearer {key}"}, open_timeout=10)


def test_websocket_streams_confirmed_and_final_text(server_url):
    samples, _ = sf.read(JFK, dtype="float32")
    samples = samples[: int(7.8 * 16000)]  # "... what your country can do for you" (a quicker test)
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
    events = []
    with _connect(server_url) as ws:
        for start in range(0, len(pcm), 6400):  # 200 ms a message
            ws.send(pcm[start : start + 6400])
        ws.send(json.dumps({"type": "input_audio.end"}))
        while (event := json.loads(ws.recv(timeout=120)))["type"] != "transcript.done":
            events.append(event)
    finals = " ".join(e["text"] for e in events if e["type"] == "transcript.final")
    assert similarity(JFK_TEXT.split(", ask what")[0], finals) >= 0.8, finals
    assert {e["type"] for e in events} >= {"transcript.confirmed", "transcript.final"}


def test_websocket_without_the_key_is_refused(server_url):
    with pytest.raises(Exception) as info:  # the handshake is closed with a policy violation
        with _connect(server_url, key="wrong") as ws:
            ws.recv(timeout=10)
    assert "1008" in str(info.value) or "403" in str(info.value)
