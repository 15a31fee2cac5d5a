"""One place that turns every failure into OpenAI's error JSON and the right HTTP status:
`{"error": {"message", "type", "param", "code"}}`. A client's mistake is never a 500.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import AudioError, EmptyAudio, InvalidOption, MlxAudioCoreMLError
from ..errors.kokoro import InvalidVoiceSpec, KokoroInputError, KokoroTextError, UnknownVoice
from ..errors.serve import QueueFull, ServeError
from .work import JobCancelled

log = logging.getLogger("mlx_audio_coreml.serve")

UPLOAD_PREFIX = "mlx-audio-coreml-upload-"  # our temporary copies of uploads (state.save_upload)
UPLOAD_PATH = re.compile(r"\S*" + re.escape(UPLOAD_PREFIX) + r"[\w.-]*")
CLIENT_CLOSED = 499  # nginx's status for a request its client abandoned (nobody reads the reply)


@dataclass(frozen=True)
class ErrorBody:
    status: int
    message: str
    type: str = "invalid_request_error"
    param: str | None = None
    code: str | None = None

    def response(self, headers: dict[str, str] | None = None) -> JSONResponse:
        body = {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}
        return JSONResponse(body, status_code=self.status, headers=headers)


def error_body(exc: BaseException) -> ErrorBody:
    """The status and error JSON for any exception a request can raise."""
    if isinstance(exc, ServeError):
        return ErrorBody(exc.status, str(exc), exc.error_type, exc.param, exc.code)
    if isinstance(exc, AudioError):
        code = "empty_audio" if isinstance(exc, EmptyAudio) else "invalid_audio"
        message = UPLOAD_PATH.sub(
            "the uploaded file", str(exc)
        )  # our temporary file's path means nothing to the client
        return ErrorBody(400, f"The audio file could not be used: {message}", param="file", code=code)
    if isinstance(exc, InvalidOption):
        return ErrorBody(400, str(exc), param=exc.name, code="invalid_value")
    if isinstance(exc, (UnknownVoice, InvalidVoiceSpec)):
        return ErrorBody(400, str(exc), param="voice", code="invalid_value")
    if isinstance(exc, (KokoroInputError, KokoroTextError)):
        return ErrorBody(400, str(exc), param="input", code="invalid_value")
    if isinstance(exc, JobCancelled):
        return ErrorBody(CLIENT_CLOSED, "The client closed the request.", "invalid_request_error")
    if isinstance(exc, MlxAudioCoreMLError):
        log.error("request failed: %s", exc)
        return ErrorBody(500, f"The model failed on this request: {exc}", "server_error")
    log.exception("unexpected error", exc_info=exc)
    return ErrorBody(500, "The server had an error while processing your request.", "server_error")


def install(app: FastAPI) -> None:
    """Route every exception through `error_body` (FastAPI's defaults answer 422 and plain JSON)."""

    async def on_error(_request: Request, exc: Exception) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, QueueFull) else None
        return error_body(exc).response(headers)

    async def on_validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = (exc.errors() or [{}])[0]
        location = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "form")]
        message = f"{'.'.join(location) or 'request'}: {first.get('msg', 'invalid value')}"
        return ErrorBody(400, message, param=".".join(location) or None, code="invalid_value").response()

    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc.__cause__, MlxAudioCoreMLError):  # FastAPI wraps body-read errors (UploadTooLarge)
            return await on_error(request, exc.__cause__)
        kind = "invalid_request_error" if exc.status_code < 500 else "server_error"
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        return ErrorBody(exc.status_code, str(exc.detail), kind, None, code).response(dict(exc.headers or {}))

    app.add_exception_handler(MlxAudioCoreMLError, on_error)
    app.add_exception_handler(JobCancelled, on_error)
    app.add_exception_handler(Exception, on_error)  # last resort: a 500 in OpenAI's shape
    app.add_exception_handler(RequestValidationError, on_validation)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, on_http)  # type: ignore[arg-type]
