"""`WS /v1/audio/live?model=NAME`: live transcription over a WebSocket.

The client sends binary messages of 16 kHz mono signed 16-bit little-endian PCM, and the text
message `{"type": "input_audio.end"}` when it is done. The server answers with JSON text messages
`{"type": "transcript.confirmed" | "transcript.tentative" | "transcript.final", "text", "utterance",
"start", "end"}`, then `{"type": "transcript.done"}`; a failure is `{"type": "error", "error": {...}}`.
Each piece of work goes through the model's bounded queue like any HTTP request.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from ..cancel import CancelToken
from ..whisper.streaming import ListenEvent, ListenOptions, LiveTranscriber
from .error_json import error_body
from .state import ServerState

router = APIRouter()


@router.websocket("/v1/audio/live")
async def live(websocket: WebSocket, model: str = "whisper-1", language: str | None = None) -> None:
    state: ServerState = websocket.app.state.server
    await websocket.accept()
    token = CancelToken()
    try:
        name, session = state.models.transcriber(model)
        options = {"language": language} if language else {}
        transcriber = LiveTranscriber(session, ListenOptions(transcribe=options))
        queue = state.queues[name]
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect()
            audio = _pcm(message)
            work: Any = transcriber.finish if audio is None else (lambda audio=audio: transcriber.feed(audio))
            events = await queue.submit(lambda _token, work=work: work(), token)
            for event in events:
                await websocket.send_text(json.dumps(_event(event)))
            if audio is None:
                await websocket.send_text(json.dumps({"type": "transcript.done"}))
                await websocket.close()
                return
    except WebSocketDisconnect:
        token.cancel()
    except Exception as exc:  # told to the client in OpenAI's error shape, then the socket closes
        body = error_body(exc)
        error = {"message": body.message, "type": body.type, "param": body.param, "code": body.code}
        await websocket.send_text(json.dumps({"type": "error", "error": error}))
        await websocket.close(code=1011 if body.status >= 500 else 1008)


def _pcm(message: Mapping[str, Any]) -> np.ndarray | None:
    """The samples of a binary message; None for the end-of-input text message."""
    data = message.get("bytes")
    if data is not None:
        return np.frombuffer(data[: len(data) // 2 * 2], dtype="<i2").astype(np.float32) / 32768.0
    text = json.loads(message.get("text") or "{}")
    if text.get("type") == "input_audio.end":
        return None
    return np.zeros(0, dtype=np.float32)  # other control messages are ignored


def _event(event: ListenEvent) -> dict[str, Any]:
    return {"type": f"transcript.{event.kind}", "text": event.text, "utterance": event.utterance,
            "start": event.start, "end": event.end}  # fmt: skip
