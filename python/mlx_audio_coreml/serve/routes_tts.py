"""`POST /v1/audio/speech`: text to audio, streamed as each sentence is made (speech_audio.py
says how each format is streamed).

The speech session is any object with `stream(text, voice=, speed=)` yielding audio pieces
(float32 arrays, or objects with `.audio`) at `sample_rate` (a `KokoroSession`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Literal

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from ..cancel import CancelToken
from ..errors.serve import InvalidRequest
from .routes_stt import retrieve_error
from .speech_audio import MEDIA_TYPES, encoded, synthesis_job
from .state import server

router = APIRouter(tags=["audio"])

_END = object()


class SpeechRequest(BaseModel):
    model: str
    input: str = Field(min_length=1)
    voice: str
    response_format: Literal["wav", "flac", "mp3", "pcm"] = "mp3"
    speed: float = Field(1.0, ge=0.25, le=4.0)
    instructions: str | None = None  # accepted for OpenAI compatibility; Kokoro takes no instructions
    stream_format: Literal["audio"] | None = None  # "sse" is not offered


@router.post("/v1/audio/speech", summary="Generate audio from text", response_class=StreamingResponse)
async def speech(request: Request, body: SpeechRequest) -> StreamingResponse:
    state = server(request)
    if len(body.input) > state.limits.max_text_chars:
        raise InvalidRequest("input", f"input is longer than {state.limits.max_text_chars} characters")
    name, session = state.models.synthesizer(body.model)
    rate = int(getattr(session, "sample_rate", 24000))
    loop = asyncio.get_running_loop()
    pieces: asyncio.Queue = asyncio.Queue()
    token = CancelToken()

    def deliver(piece: np.ndarray) -> None:  # on the worker thread: hand the piece to the event loop
        loop.call_soon_threadsafe(pieces.put_nowait, piece)

    future = state.queues[name].submit(synthesis_job(session, body.input, body.voice, body.speed, deliver), token)
    future.add_done_callback(lambda _f: pieces.put_nowait(_END))
    future.add_done_callback(retrieve_error)  # a client that left never reads the job's error
    first = await pieces.get()  # the first sentence (or the failure) before any byte is sent
    if first is _END:
        future.result()  # raises the job's error: answered as OpenAI error JSON
        raise InvalidRequest("input", "the input produced no audio")

    async def body_bytes() -> AsyncIterator[bytes]:
        try:
            async for chunk in encoded(first, pieces, _END, body.response_format, rate):
                yield chunk  # a sentence that fails later ends the stream early
        finally:
            token.cancel()  # a client that left stops synthesis at its next sentence

    return StreamingResponse(body_bytes(), media_type=MEDIA_TYPES[body.response_format])
