"""The ASGI app: `create_app(sessions, limits)` builds it from sessions loaded by the caller.

    app = create_app(ServedModels(transcription={"tiny.en": session}), ServeLimits(api_key="k"))
    uvicorn.run(app, host="127.0.0.1", port=8000)

Routes are thin (routes_*.py); the work runs on bounded per-model queues (work.py); every failure
is answered in OpenAI's error JSON by one handler (error_json.py); guards.py checks the key and
the upload size before any route runs. Shutdown drains: the queues finish what they hold.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from .. import __version__
from . import error_json
from .guards import Guards
from .limits import ServeLimits
from .registry import ServedModels
from .routes_info import router as info_router
from .routes_live import router as live_router
from .routes_stt import router as stt_router
from .routes_tts import router as tts_router
from .state import ServerState


def create_app(sessions: ServedModels | Mapping[str, Any], limits: ServeLimits | None = None) -> FastAPI:
    """An OpenAI-compatible audio API over `sessions` (a ServedModels, or {name: WhisperSession})."""
    models = sessions if isinstance(sessions, ServedModels) else ServedModels(transcription=dict(sessions))
    limits = limits or ServeLimits()
    state = ServerState.start(models, limits)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        state.close()  # uvicorn has stopped taking requests; finish the queued ones

    app = FastAPI(
        title="mlx-audio-coreml",
        version=__version__,
        summary="OpenAI-compatible speech to text and text to speech, on the machine",
        lifespan=lifespan,
    )
    app.state.server = state
    error_json.install(app)
    for router in (stt_router, tts_router, live_router, info_router):
        app.include_router(router)
    app.add_middleware(Guards, max_body_bytes=limits.max_upload_bytes, api_key=limits.api_key)
    return app
