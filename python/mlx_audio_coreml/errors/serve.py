"""The HTTP server: requests it refuses, each with the HTTP status and OpenAI error code it maps to."""

from __future__ import annotations

from collections.abc import Sequence

from ._base import MlxAudioCoreMLError


class ServeError(MlxAudioCoreMLError):
    """A request the server refuses; `status`, `error_type`, `code` and `param` fill OpenAI's error JSON."""

    status = 400
    error_type = "invalid_request_error"
    code: str | None = None
    param: str | None = None


class InvalidRequest(ServeError):
    """A field is missing or has a value we cannot use."""

    def __init__(self, param: str | None, message: str, code: str | None = "invalid_value") -> None:
        self.param = param
        self.code = code
        super().__init__(message)


class ModelNotServed(ServeError):
    """No loaded model answers to `model`; `available` lists those that do."""

    status = 404
    code = "model_not_found"
    param = "model"

    def __init__(self, model: str, available: Sequence[str], kind: str = "") -> None:
        self.model = model
        self.available = list(available)
        what = f"{kind} model" if kind else "model"
        served = ", ".join(self.available) or "none"
        super().__init__(f"The {what} '{model}' does not exist or is not served here (served: {served}).")


class UploadTooLarge(ServeError):
    status = 413
    code = "upload_too_large"
    param = "file"

    def __init__(self, limit_bytes: int) -> None:
        self.limit_bytes = int(limit_bytes)
        super().__init__(f"The request body is larger than this server accepts ({self.limit_bytes} bytes).")


class QueueFull(ServeError):
    """Every queue slot is taken; try again after `retry_after_s`."""

    status = 429
    error_type = "rate_limit_error"
    code = "queue_full"

    def __init__(self, capacity: int, retry_after_s: int) -> None:
        self.capacity = int(capacity)
        self.retry_after_s = max(1, int(retry_after_s))
        super().__init__(f"The server is busy ({self.capacity} requests queued); retry after {self.retry_after_s} s.")


class Unauthorized(ServeError):
    status = 401
    code = "invalid_api_key"

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class ShuttingDown(ServeError):
    status = 503
    error_type = "server_error"
    code = "shutting_down"

    def __init__(self) -> None:
        super().__init__("The server is shutting down and takes no new requests.")
