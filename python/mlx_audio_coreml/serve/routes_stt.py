"""`POST /v1/audio/transcriptions` and `/v1/audio/translations`: thin routes over transcription.py.

Both take OpenAI's multipart form. The answer is the body in `response_format`, or with
`stream=true` server-sent events (`transcript.text.delta` per segment, then `transcript.text.done`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response, StreamingResponse

from ..cancel import CancelToken
from .error_json import error_body
from .state import ServerState, run_or_cancel, save_upload, server
from .transcription import MEDIA_TYPES, TranscriptionRequest, render, sse, transcribe_job

router = APIRouter(tags=["audio"])

_END = object()


@router.post("/v1/audio/transcriptions", summary="Transcribe audio into the input language")
async def transcriptions(
    request: Request,
    file: Annotated[UploadFile, File(description="audio: wav, flac, mp3, ogg, m4a, webm ...")],
    model: Annotated[str, Form()],
    language: Annotated[str | None, Form()] = None,
    prompt: Annotated[str | None, Form()] = None,
    response_format: Annotated[str, Form()] = "json",
    temperature: Annotated[str | None, Form()] = None,
    granularities: Annotated[list[str], Form(alias="timestamp_granularities[]")] = [],  # noqa: B006
    stream: Annotated[str | None, Form()] = None,
) -> Response:
    form = {"model": model, "language": language, "prompt": prompt, "response_format": response_format,
            "temperature": temperature, "stream": stream}  # fmt: skip
    return await _answer(request, TranscriptionRequest.from_form("transcribe", form, granularities), file)


@router.post("/v1/audio/translations", summary="Translate audio into English text")
async def translations(
    request: Request,
    file: Annotated[UploadFile, File()],
    model: Annotated[str, Form()],
    prompt: Annotated[str | None, Form()] = None,
    response_format: Annotated[str, Form()] = "json",
    temperature: Annotated[str | None, Form()] = None,
) -> Response:
    form = {"model": model, "prompt": prompt, "response_format": response_format, "temperature": temperature}
    return await _answer(request, TranscriptionRequest.from_form("translate", form, ()), file)


async def _answer(request: Request, job: TranscriptionRequest, file: UploadFile) -> Response:
    state = server(request)
    name, session = state.models.transcriber(job.model)
    audio = await save_upload(file, state.limits.max_upload_bytes)
    try:
        if job.stream:
            return _stream(state, name, session, audio, job)
        token = CancelToken()
        future = state.queues[name].submit(transcribe_job(session, audio, job), token)
        transcript = await run_or_cancel(request, future, token)
    except BaseException:
        audio.unlink(missing_ok=True)
        raise
    audio.unlink(missing_ok=True)
    return Response(render(transcript, job), media_type=MEDIA_TYPES[job.response_format])


def _stream(state: ServerState, name: str, session: object, audio: Path, job: TranscriptionRequest) -> Response:
    """Queue the job now (so a full queue is still a 429), then stream its segments as they come."""
    loop = asyncio.get_running_loop()
    deltas: asyncio.Queue = asyncio.Queue()
    token = CancelToken()

    def on_segment(segment: Any) -> None:  # on the worker thread: hand the text to the event loop
        loop.call_soon_threadsafe(deltas.put_nowait, segment.text)

    future = state.queues[name].submit(transcribe_job(session, audio, job, on_segment), token)
    future.add_done_callback(lambda _f: deltas.put_nowait(_END))
    future.add_done_callback(retrieve_error)  # a client that left never reads the job's error

    async def events() -> AsyncIterator[str]:
        try:
            while (delta := await deltas.get()) is not _END:
                yield sse({"type": "transcript.text.delta", "delta": delta})
            error = future.exception()
            if error is not None:
                body = error_body(error)
                yield sse(
                    {"error": {"message": body.message, "type": body.type, "param": body.param, "code": body.code}}
                )
                return
            yield sse({"type": "transcript.text.done", "text": future.result().text})
        finally:
            token.cancel()  # a client that left mid-stream stops the decode at its next window
            audio.unlink(missing_ok=True)

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def retrieve_error(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()
