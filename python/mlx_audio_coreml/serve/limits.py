"""The server's bounds, in one place: upload size, queue depth, workers, batching."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServeLimits:
    max_upload_bytes: int = 25 * 1024 * 1024  # OpenAI's own limit for audio uploads
    max_queued: int = 8  # requests waiting for a worker (per model); more are answered 429
    workers: int = 1  # requests run at once per model (the model shares the machine's cores)
    max_text_chars: int = 4096  # /v1/audio/speech input, as OpenAI
    shutdown_grace_s: float = 30.0  # how long shutdown waits for requests in flight
    api_key: str | None = None  # when set, every /v1 request needs `Authorization: Bearer <key>`
