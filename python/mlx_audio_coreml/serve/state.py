"""What every request shares: the served models, their work queues, the limits, and the helpers
that hand a request's work to a queue and wait for it while watching for the client leaving.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Request, UploadFile

from ..cancel import CancelToken
from ..errors import EmptyAudio
from ..errors.serve import InvalidRequest, UploadTooLarge
from .error_json import UPLOAD_PREFIX
from .limits import ServeLimits
from .registry import ServedModels
from .work import JobCancelled, WorkQueue

_COPY_CHUNK = 1 << 20


@dataclass
class ServerState:
    models: ServedModels
    limits: ServeLimits
    queues: dict[str, WorkQueue] = field(default_factory=dict)

    @classmethod
    def start(cls, models: ServedModels, limits: ServeLimits) -> ServerState:
        queues = {name: WorkQueue(name, limits.workers, limits.max_queued) for name in models.names()}
        return cls(models, limits, queues)

    def close(self) -> None:
        """Take no new work; let queued and running requests finish within the grace period."""
        for queue in self.queues.values():
            queue.close(self.limits.shutdown_grace_s)


def server(request: Request) -> ServerState:
    return request.app.state.server


async def run_or_cancel(request: Request, future: asyncio.Future, token: CancelToken) -> Any:
    """Await a queued job; if the client disconnects first, cancel the job and raise JobCancelled."""
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        done, _ = await asyncio.wait({future, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if future in done:
        return future.result()
    token.cancel()  # the worker stops at its next check; a job still queued is skipped
    future.cancel()
    raise JobCancelled()


async def _disconnected(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def save_upload(upload: UploadFile, limit_bytes: int) -> Path:
    """Copy an uploaded file to a named temporary file (decoders want a path and a suffix)."""
    if upload is None or not getattr(upload, "filename", None):
        raise InvalidRequest("file", "you must provide an audio file in the 'file' field", "missing_required_parameter")
    suffix = Path(upload.filename or "").suffix[:16]
    handle, name = tempfile.mkstemp(prefix=UPLOAD_PREFIX, suffix=suffix)
    written = 0
    try:
        with os.fdopen(handle, "wb") as out:
            while chunk := await upload.read(_COPY_CHUNK):
                written += len(chunk)
                if written > limit_bytes:
                    raise UploadTooLarge(limit_bytes)
                out.write(chunk)
        if written == 0:
            raise EmptyAudio(upload.filename or "file")
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)
