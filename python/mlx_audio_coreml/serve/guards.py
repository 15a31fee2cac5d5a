"""ASGI middleware that refuses a request before any route runs: a missing or wrong API key (401)
and a body over the upload limit (413), counted as it arrives so a chunked upload cannot slip by.
"""

from __future__ import annotations

import hmac
from typing import Any

from ..errors.serve import ServeError, Unauthorized, UploadTooLarge
from .error_json import error_body

Scope = dict[str, Any]
Receive = Any
Send = Any

OPEN_PATHS = ("/health", "/docs", "/redoc", "/openapi.json")  # no key needed


class Guards:
    """Wraps the app: key check for /v1, then the body-size bound for every request."""

    def __init__(self, app: Any, max_body_bytes: int, api_key: str | None = None) -> None:
        self.app = app
        self.max_body_bytes = int(max_body_bytes)
        self.api_key = api_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket" and self._key_problem(scope):
                await send({"type": "websocket.close", "code": 1008})  # policy violation
                return
            await self.app(scope, receive, send)
            return
        problem = self._key_problem(scope)
        if problem is not None:
            await _refuse(problem, scope, receive, send)
            return
        length = _header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            await _refuse(UploadTooLarge(self.max_body_bytes), scope, receive, send)
            return
        await self.app(scope, _counting(receive, self.max_body_bytes), send)

    def _key_problem(self, scope: Scope) -> Unauthorized | None:
        if not self.api_key or not scope["path"].startswith("/v1"):
            return None
        auth = _header(scope, b"authorization") or ""
        if not auth:
            return Unauthorized("You didn't provide an API key: send it as 'Authorization: Bearer <key>'.")
        scheme, _, key = auth.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(key.strip().encode(), self.api_key.encode()):
            return Unauthorized("Incorrect API key provided.")
        return None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _counting(receive: Receive, limit: int) -> Receive:
    seen = 0

    async def counted() -> dict[str, Any]:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise UploadTooLarge(limit)  # raised inside the route's body read: its handler answers 413
        return message

    return counted


async def _refuse(error: ServeError, scope: Scope, receive: Receive, send: Send) -> None:
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
    await error_body(error).response(headers)(scope, receive, send)
